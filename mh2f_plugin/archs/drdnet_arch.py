"""DRD-Net: Detail-Recovery image Deraining network (Deng, Wei, Wang, Liang, Xie, Yang; CVPR 2020).

A comparison baseline, as the authors' Keras code builds it. Two networks in sequence:

* rain residual network: 3x3 conv + PReLU, ``num_blocks`` squeeze-and-excitation residual blocks
  (conv-BN-PReLU-conv-BN, SE with ``se_hidden`` units and Keras' hard sigmoid
  ``clip(0.2 x + 0.5, 0, 1)``, plus the block input), 3x3 conv + BN plus the first features,
  3x3 conv: the rain layer ``R``; the first output is ``O - R``;
* detail repair network on ``(O - R) + O``: the same frame with structure-detail context
  aggregation blocks, whose convolutions are each three parallel 3x3 convolutions with dilations
  1, 3 and 5, concatenated and fused by a 1x1 convolution. The derained image is
  ``(O - R) + detail``.

Batch normalisation uses Keras' epsilon (1e-3). The paper trains with an L0-style annealed loss on
both outputs; here the final output is what BasicSR's losses see.
Images are ``(B, C, H, W)`` in [0, 1]; the output has the input's shape.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

KERAS_BN_EPS = 1e-3


def _bn(num_feat):
    return nn.BatchNorm2d(num_feat, eps=KERAS_BN_EPS)


class SEResBlock(nn.Module):
    """``x + SE(BN(conv(PReLU(BN(conv(x))))))``: ``(B, C, H, W)`` in and out."""

    def __init__(self, num_feat, se_hidden):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), _bn(num_feat), nn.PReLU(num_feat),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), _bn(num_feat))
        self.squeeze = nn.Linear(num_feat, se_hidden, bias=False)
        self.excite = nn.Linear(se_hidden, num_feat, bias=False)

    def forward(self, x):
        out = self.body(x)
        weights = (0.2 * self.excite(torch.relu(self.squeeze(out.mean((2, 3))))) + 0.5).clamp(0, 1)
        return x + out * weights[..., None, None]


class ContextConv(nn.Module):
    """Three 3x3 convolutions with dilations 1, 3, 5 side by side, fused by a 1x1 convolution."""

    def __init__(self, num_feat):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(num_feat, num_feat, 3, 1, d, dilation=d) for d in (1, 3, 5))
        self.fuse = nn.Conv2d(3 * num_feat, num_feat, 1)

    def forward(self, x):
        return self.fuse(torch.cat([branch(x) for branch in self.branches], 1))


class ContextResBlock(nn.Module):
    """Structure-detail context aggregation block: ``x + BN(ctx(PReLU(BN(ctx(x)))))``."""

    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.Sequential(
            ContextConv(num_feat), _bn(num_feat), nn.PReLU(num_feat), ContextConv(num_feat), _bn(num_feat))

    def forward(self, x):
        return x + self.body(x)


class _Branch(nn.Module):
    """3x3 conv + PReLU, residual blocks, 3x3 conv + BN plus the first features, 3x3 conv out."""

    def __init__(self, num_in_ch, num_feat, blocks):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.PReLU(num_feat))
        self.blocks = nn.Sequential(*blocks)
        self.fuse = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), _bn(num_feat))
        self.tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1)

    def forward(self, x):
        first = self.head(x)
        return self.tail(self.fuse(self.blocks(first)) + first)


@ARCH_REGISTRY.register()
class DRDNet(nn.Module):
    """DRD-Net: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 64.
        num_blocks (int): residual blocks in each network. Default: 16.
        se_hidden (int): hidden units of the rain network's SE. Default: 4.
    """

    def __init__(self, num_in_ch=3, num_feat=64, num_blocks=16, se_hidden=4):
        super().__init__()
        self.rain = _Branch(num_in_ch, num_feat, [SEResBlock(num_feat, se_hidden) for _ in range(num_blocks)])
        self.detail = _Branch(num_in_ch, num_feat, [ContextResBlock(num_feat) for _ in range(num_blocks)])

    def forward(self, rainy):
        coarse = rainy - self.rain(rainy)
        return coarse + self.detail(coarse + rainy)
