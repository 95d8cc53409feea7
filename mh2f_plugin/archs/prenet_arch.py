"""PReNet: Progressive Recurrent Network (Ren, Zuo, Hu, Zhu, Meng; CVPR 2019), a comparison baseline.

Each of ``num_iters`` stages sees the rainy image concatenated with the previous stage's result,
passes it through a 3x3 convolution, a convolutional LSTM that carries state across stages,
``num_res`` residual blocks, and a 3x3 convolution that predicts a residual added to the rainy
image. Published defaults: 6 stages, 32 channels, 5 residual blocks (about 0.17 M parameters).
Images are ``(B, C, H, W)``; the output has the input's shape.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM: ``(x, (h, c)) -> (h, c)``, all ``(B, num_feat, H, W)``; 3x3 gates over cat[x, h]."""

    def __init__(self, num_feat):
        super().__init__()
        self.gates = nn.Conv2d(2 * num_feat, 4 * num_feat, 3, 1, 1)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ResBlock(nn.Module):
    """``relu(x + relu(conv(relu(conv(x)))))``, ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.ReLU(inplace=True))

    def forward(self, x):
        return F.relu(x + self.body(x))


@ARCH_REGISTRY.register()
class PReNet(nn.Module):
    """PReNet: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        num_iters (int): recurrent stages T. Default: 6.
        num_res (int): residual blocks per stage. Default: 5.
    """

    def __init__(self, num_in_ch=3, num_feat=32, num_iters=6, num_res=5):
        super().__init__()
        self.num_iters = num_iters
        self.head = nn.Sequential(nn.Conv2d(2 * num_in_ch, num_feat, 3, 1, 1), nn.ReLU(inplace=True))
        self.lstm = ConvLSTMCell(num_feat)
        self.body = nn.Sequential(*(ResBlock(num_feat) for _ in range(num_res)))
        self.tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1)

    def forward(self, rainy):
        batch, _, height, width = rainy.shape
        h = c = rainy.new_zeros(batch, self.lstm.gates.out_channels // 4, height, width)
        out = rainy
        for _ in range(self.num_iters):
            h, c = self.lstm(self.head(torch.cat([rainy, out], 1)), (h, c))
            out = rainy + self.tail(self.body(h))
        return out
