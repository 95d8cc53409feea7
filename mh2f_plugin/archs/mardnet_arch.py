"""MARD-Net: Multi-scale Attentive Residual Dense Network (Chen, Huang, Xu; ACCV 2020), a comparison baseline.

By MH2F-Net's own authors, and its natural baseline. A 3x3 convolution lifts the rainy image to
``num_feat`` channels; ``num_blocks`` multi-scale attentive residual blocks follow in a chain,
and after each a 1x1 convolution (+ReLU) fuses the concatenation of the first features and
every block output so far (dense connections); a 3x3 convolution and ``tanh`` give a residual
that is added to the rainy image.

Each block: 3x3 and 5x5 convolutions (+LeakyReLU 0.2) of its input, summed; 3x3 and 5x5
convolutions (+LeakyReLU) of that sum, concatenated (3x3 first) and fused by a 1x1 then a 3x3
convolution; channel attention (squeeze-and-excitation over the whole image), then spatial
attention (three 3x3 convolutions without bias, ReLU between, a sigmoid map); plus the block's
input. The channel attention averages over the whole image, so tiles give slightly different
results than the whole image. Images are ``(B, C, H, W)`` RGB in [0, 1], any size; the output
has the input's shape and is not clamped.
"""
import torch
from basicsr.archs.rcan_arch import ChannelAttention
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.errors import InvalidOption


def _conv_lrelu(num_feat, kernel_size):
    return nn.Sequential(nn.Conv2d(num_feat, num_feat, kernel_size, 1, kernel_size // 2), nn.LeakyReLU(0.2, True))


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv(relu(conv(relu(conv(x))))))`` with 3x3 convolutions without bias:
    ``num_feat -> hidden -> hidden -> 1``; ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, hidden):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 3, 1, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 3, 1, 1, bias=False))

    def forward(self, x):
        return x * torch.sigmoid(self.body(x))


class MultiScaleBlock(nn.Module):
    """MARD-Net's multi-scale attentive residual block, ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, reduction=4):
        super().__init__()
        self.scale3_1, self.scale5_1 = _conv_lrelu(num_feat, 3), _conv_lrelu(num_feat, 5)
        self.scale3_2, self.scale5_2 = _conv_lrelu(num_feat, 3), _conv_lrelu(num_feat, 5)
        self.fuse = nn.Conv2d(2 * num_feat, num_feat, 1)
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.channel_attention = ChannelAttention(num_feat, squeeze_factor=reduction)
        self.spatial_attention = SpatialAttention(num_feat, num_feat // reduction)

    def forward(self, x):
        first = self.scale3_1(x) + self.scale5_1(x)
        out = self.conv(self.fuse(torch.cat([self.scale3_2(first), self.scale5_2(first)], 1)))
        return x + self.spatial_attention(self.channel_attention(out))


@ARCH_REGISTRY.register()
class MARDNet(nn.Module):
    """MARD-Net: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        num_blocks (int): multi-scale blocks, each followed by a dense 1x1 fusion. Default: 8.
        reduction (int): the attention layers' channel reduction. Default: 4.
    """

    def __init__(self, num_in_ch=3, num_feat=32, num_blocks=8, reduction=4):
        super().__init__()
        if num_blocks < 1 or num_feat < reduction:
            raise InvalidOption(f'MARDNet: num_blocks must be at least 1 and num_feat at least reduction '
                                f'({reduction}), got {num_blocks} and {num_feat}')
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.blocks = nn.ModuleList(MultiScaleBlock(num_feat, reduction) for _ in range(num_blocks))
        self.fusions = nn.ModuleList(
            nn.Sequential(nn.Conv2d((i + 2) * num_feat, num_feat, 1), nn.ReLU(inplace=True)) for i in range(num_blocks))
        self.tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1)

    def forward(self, rainy):
        features = [self.head(rainy)]
        x = features[0]
        for block, fusion in zip(self.blocks, self.fusions):
            features.append(block(x))
            x = fusion(torch.cat(features, 1))
        return rainy + torch.tanh(self.tail(x))
