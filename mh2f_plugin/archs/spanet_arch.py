"""SPANet: Spatial Attentive Network (Wang, Yang, Xu, Chen, Zhang, Lau; CVPR 2019), a comparison baseline.

A 3x3 convolution, 17 dilated bottleneck residual blocks, a 3x3 output convolution that predicts
the clean image directly. Blocks 4-15 are gated, three at a time, by a spatial attention map from
the Spatial Attentive Module (SAM; one module, applied four times). SAM gathers context along
the four image directions with two ReLU recurrences (IRNN): for direction "right",
``y[0] = relu(x[0])`` and ``y[i] = relu(w * y[i-1] + b + x[i])`` along each row, with a weight
(initialised to 0.2, as the authors') and a bias per channel and direction.

The authors' IRNN is a CUDA kernel; here it is plain PyTorch (a scan over rows or columns, the
two opposite directions of an axis in one pass), so it runs and trains on CPU and GPU alike.
The authors' code computes a direction-attention map in SAM but never applies it
(``Tensor.mul`` is not in place), and their weights were trained that way: by default neither is
it here (``direction_attention: false``); ``true`` applies it as the paper describes.
Their weights were trained on BGR images; ``mh2f_plugin.weights`` converts them to RGB.
Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

DIRECTIONS = ('up', 'right', 'down', 'left')  # "up": the recurrence runs from the bottom row upwards


def _scan(x, weight, bias):
    """``y[0] = relu(x[0])``, ``y[i] = relu(weight * y[i-1] + bias + x[i])`` along dim 0 of
    ``x`` ``(L, ...)``; ``weight`` and ``bias`` broadcast against ``x[i]``."""
    outputs = [F.relu(x[0])]
    for step in x[1:]:
        outputs.append(F.relu(torch.addcmul(bias + step, outputs[-1], weight)))
    return torch.stack(outputs)


class IRNN(nn.Module):
    """Four directional ReLU recurrences: ``(B, C, H, W) -> [up, right, down, left]``, each
    ``(B, C, H, W)``; the value at a pixel gathers the pixels before it in that direction."""

    def __init__(self, num_feat, alpha=0.2):
        super().__init__()
        self.weight = nn.Parameter(torch.full((len(DIRECTIONS), num_feat), alpha))
        self.bias = nn.Parameter(torch.zeros(len(DIRECTIONS), num_feat))

    def forward(self, x):
        w = self.weight[:, None, :, None]  # (4, 1, C, 1) against a step (2, B, C, H or W)
        b = self.bias[:, None, :, None]
        # along H: "down" runs from the top row, "up" from the bottom (on the flipped rows)
        rows = torch.stack([x, x.flip(2)]).permute(3, 0, 1, 2, 4)  # (H, 2, B, C, W)
        down, up = _scan(rows, w[[2, 0]], b[[2, 0]]).permute(1, 2, 3, 0, 4)
        cols = torch.stack([x, x.flip(3)]).permute(4, 0, 1, 2, 3)  # (W, 2, B, C, H)
        right, left = _scan(cols, w[[1, 3]], b[[1, 3]]).permute(1, 2, 3, 4, 0)
        return [up.flip(2), right, down, left.flip(3)]


class DirectionAttention(nn.Module):
    """``(B, C, H, W) -> (B, 4, H, W)``: a weight in (0, 1) per direction and pixel."""

    def __init__(self, num_feat):
        super().__init__()
        half = num_feat // 2
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, half, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(half, half, 3, 1, 1),
            nn.ReLU(inplace=True), nn.Conv2d(half, len(DIRECTIONS), 1), nn.Sigmoid())

    def forward(self, x):
        return self.body(x)


class SAM(nn.Module):
    """Spatial Attentive Module: ``(B, C, H, W) -> (B, 1, H, W)`` attention map in (0, 1).

    3x3 conv -> IRNN -> 3x3 conv over the four directions -> IRNN -> 3x3 conv -> ReLU -> 1x1
    conv -> sigmoid (convolutions without bias, as the authors'); with ``direction_attention``
    each direction is weighted by ``DirectionAttention`` after each IRNN.
    """

    def __init__(self, num_feat, direction_attention=False):
        super().__init__()
        self.conv_in = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)
        self.irnn1, self.irnn2 = IRNN(num_feat), IRNN(num_feat)
        self.conv2 = nn.Conv2d(4 * num_feat, num_feat, 3, 1, 1, bias=False)
        self.conv3 = nn.Conv2d(4 * num_feat, num_feat, 3, 1, 1, bias=False)
        self.attention = DirectionAttention(num_feat) if direction_attention else None
        self.conv_out = nn.Conv2d(num_feat, 1, 1, bias=False)

    def _directions(self, irnn, x, weights):
        outs = irnn(x)
        if weights is not None:
            outs = [out * weights[:, i:i + 1] for i, out in enumerate(outs)]
        return torch.cat(outs, 1)

    def forward(self, x):
        weights = self.attention(x) if self.attention is not None else None
        out = self.conv2(self._directions(self.irnn1, self.conv_in(x), weights))
        out = F.relu(self.conv3(self._directions(self.irnn2, out, weights)))
        return torch.sigmoid(self.conv_out(out))


class Bottleneck(nn.Module):
    """1x1 conv, ReLU, 3x3 conv with dilation 2, ReLU, 1x1 conv (no biases): ``(B, C, H, W)`` in and out."""

    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 2, dilation=2, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, 1, bias=False))

    def forward(self, x):
        return self.body(x)


@ARCH_REGISTRY.register()
class SPANet(nn.Module):
    """SPANet: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        direction_attention (bool): apply SAM's direction attention (see the module docstring).
            Default: False, as the authors' code and weights.
    """

    NUM_BLOCKS = 17
    ATTENDED = range(3, 15)  # blocks 4-15 (0-based 3..14), three per attention map

    export_refusal = ('its IRNN runs a recurrence along every row and column, one step per pixel, which an ONNX '
                      'graph holds only unrolled at one fixed size, thousands of steps at photo sizes')

    def __init__(self, num_in_ch=3, num_feat=32, direction_attention=False):
        super().__init__()
        self.conv_in = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=False), nn.ReLU(inplace=True))
        self.sam = SAM(num_feat, direction_attention)
        self.blocks = nn.ModuleList(Bottleneck(num_feat) for _ in range(self.NUM_BLOCKS))
        self.conv_out = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1, bias=False)

    def forward(self, x):
        out = self.conv_in(x)
        attention = None
        for index, block in enumerate(self.blocks):
            if index in self.ATTENDED and (index - self.ATTENDED.start) % 3 == 0:
                attention = self.sam(out)
            residual = block(out)
            out = F.relu(residual * attention + out if index in self.ATTENDED else residual + out)
        return self.conv_out(out)
