"""JORDER-E, the authors' practical model for real rain (Yang, Tan, Feng, Guo, Yan, Liu; TPAMI 2019).

The network of their ``testing_practical/src/model/jorder_e.py`` (32 channels, 3 residual blocks per
stage), not the 64-channel one of their ``src/``. Two stages of one design, each:

* a 3x3 convolution of ``cat[rainy, previous]`` (stage 1 sees the rainy image twice);
* three residual blocks of three branches (3x3 convolutions, dilations 1-1, 2-2 and 2-4, ReLU after
  each): ``f + a + 0.1 b + 0.1 c``, plus the same block's output in the previous stage;
* a rain mask (2 channels) and a rain level (3 channels), each from two 3x3 convolutions without an
  activation between them, plus the previous stage's;
* the features modulated by both: ``shift(mask) + f + shift(level) + scale(mask) * f * scale(level)``,
  where each shift and scale is two 3x3 convolutions with a ReLU between;
* two 3x3 convolutions without an activation, plus the rainy image: the stage's result.

The second stage's result is the derained image. The authors feed RGB in 0..255 (``rgb_range:
255``) and the network has no normalisation; the multiplicative modulation makes it depend on that
scale, so inputs in [0, 1] are multiplied by ``rgb_range`` and the result divided by it.
Images are ``(B, C, H, W)`` RGB in [0, 1], any size; the output has the input's shape, not clamped.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


def _conv(in_ch, out_ch, dilation=1):
    return nn.Conv2d(in_ch, out_ch, 3, 1, dilation, dilation=dilation)


def _branch(num_feat, first, second):
    """``relu(conv(relu(conv(x))))`` with the two dilations."""
    return nn.Sequential(
        _conv(num_feat, num_feat, first), nn.ReLU(inplace=True), _conv(num_feat, num_feat, second),
        nn.ReLU(inplace=True))


def _two_convs(in_ch, hidden, out_ch, act):
    layers = [_conv(in_ch, hidden)] + ([nn.ReLU(inplace=True)] if act else []) + [_conv(hidden, out_ch)]
    return nn.Sequential(*layers)


class DilatedResBlock(nn.Module):
    """``f + a(f) + 0.1 b(f) + 0.1 c(f) (+ previous)``: three branches of dilations 1-1, 2-2, 2-4."""

    def __init__(self, num_feat):
        super().__init__()
        self.branch_a, self.branch_b, self.branch_c = (_branch(num_feat, *d) for d in ((1, 1), (2, 2), (2, 4)))

    def forward(self, f, previous=None):
        out = f + self.branch_a(f) + 0.1 * self.branch_b(f) + 0.1 * self.branch_c(f)
        return out if previous is None else out + previous


class JorderStage(nn.Module):
    """One stage: ``(rainy, previous result, previous stage's state or None) -> (result, state)``,
    images ``(B, C, H, W)`` in 0..255; ``state`` holds the blocks' outputs, the mask and the level."""

    def __init__(self, num_in_ch, num_feat, num_blocks):
        super().__init__()
        self.head = _conv(2 * num_in_ch, num_feat)
        self.blocks = nn.ModuleList(DilatedResBlock(num_feat) for _ in range(num_blocks))
        self.mask_head = _two_convs(num_feat, num_feat // 4, 2, act=False)
        self.level_head = _two_convs(num_feat, num_feat // 4, 3, act=False)
        self.mask_shift, self.mask_scale = (_two_convs(2, num_feat // 2, num_feat, act=True) for _ in range(2))
        self.level_shift, self.level_scale = (_two_convs(3, num_feat // 2, num_feat, act=True) for _ in range(2))
        self.tail = _two_convs(num_feat, num_feat, num_in_ch, act=False)

    def forward(self, rainy, previous, state=None):
        f = self.head(torch.cat([rainy, previous], 1))
        outputs = []
        for index, block in enumerate(self.blocks):
            f = block(f, None if state is None else state['blocks'][index])
            outputs.append(f)
        mask, level = self.mask_head(f), self.level_head(f)
        if state is not None:
            mask, level = mask + state['mask'], level + state['level']
        modulated = (
            self.mask_shift(mask) + f + self.level_shift(level) + self.mask_scale(mask) * f * self.level_scale(level))
        return self.tail(modulated) + rainy, {'blocks': outputs, 'mask': mask, 'level': level}


@ARCH_REGISTRY.register()
class JORDERE(nn.Module):
    """JORDER-E (practical model): ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        num_blocks (int): residual blocks per stage. Default: 3.
        num_stages (int): stages. Default: 2.
        rgb_range (float): the pixel range the network was trained on (inputs in [0, 1] are scaled
            to it and back). Default: 255.
    """

    def __init__(self, num_in_ch=3, num_feat=32, num_blocks=3, num_stages=2, rgb_range=255.):
        super().__init__()
        self.rgb_range = rgb_range
        self.stages = nn.ModuleList(JorderStage(num_in_ch, num_feat, num_blocks) for _ in range(num_stages))

    def forward(self, rainy):
        rainy = rainy * self.rgb_range
        out, state = rainy, None
        for stage in self.stages:
            out, state = stage(rainy, out, state)
        return out / self.rgb_range
