"""MH2F-Net: Multi-scale Hourglass Hierarchical Fusion Network for single-image deraining.

Chen, Huang and Xu. The layer widths are not published; the choices below are the defaults of
the project's reading of the paper, and every alternative it names is a constructor option.

Shapes: images are ``(B, num_in_ch, H, W)`` in [0, 1], any ``H, W``; features are
``(B, num_feat, H', W')`` with ``H', W'`` the size padded to a multiple of 4.
"""
import torch
import torch.nn.functional as F
from basicsr.archs.rcan_arch import ChannelAttention
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.arch_util import concat_channels, pad_to_multiple
from mh2f_plugin.errors import InvalidOption

ACTIVATIONS = {'lrelu': lambda: nn.LeakyReLU(0.2, inplace=True), 'relu': lambda: nn.ReLU(inplace=True)}
HIERARCHY_FUSIONS = ('hadb', 'concat')
FINAL_FUSIONS = ('rpf', 'add', 'concat')
DOWNSAMPLES = ('conv', 'maxpool', 'avgpool')
SIZE_MULTIPLE = 4  # two 2x down-samplings inside every hourglass


def _choice(name, value, allowed):
    if value not in allowed:
        raise InvalidOption(f"MH2FNet: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class DCRBlock(nn.Module):
    """Densely Connected Residual block (MARA-Net): ``(B, C, H, W) -> (B, C, H, W)``.

    Each of ``num_layers`` 3x3 convolutions (``growth`` channels out) sees the concatenation of
    the block input and all earlier outputs; a 1x1 convolution maps everything back to ``C``
    channels and the block input is added.
    """

    def __init__(self, num_feat, num_layers=3, growth=16, act='lrelu'):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(num_feat + i * growth, growth, 3, 1, 1) for i in range(num_layers))
        self.act = ACTIVATIONS[act]()
        self.fuse = nn.Conv2d(num_feat + num_layers * growth, num_feat, 1)

    def forward(self, x):
        dense = x
        for layer in self.layers:
            # Grown by one feature at a time: a concatenation of two tensors copies 1.5-2.3x
            # faster than one of all the features (bfloat16 channels-last, torch 2.14).
            dense = concat_channels([dense, self.act(layer(dense))])
        return x + self.fuse(dense)


def _downsample(kind, num_feat):
    if kind == 'conv':
        return nn.Conv2d(num_feat, num_feat, 3, 2, 1)
    return nn.MaxPool2d(2) if kind == 'maxpool' else nn.AvgPool2d(2)


class MHEB(nn.Module):
    """Multi-scale Hourglass Extraction Block: ``(B, C, H, W) -> (B, C, H, W)``, ``H, W`` multiples of 4.

    Top-down DCR blocks at full, 1/2 and 1/4 resolution (down-sampling between them); bottom-up
    DCR blocks at 1/2 and full resolution, each after adding the nearest-neighbour up-sampled
    coarser stream (skip connections); a 1x1 convolution; plus the block input.
    """

    def __init__(self, num_feat, dcr_layers=3, growth=16, act='lrelu', downsample='conv'):
        super().__init__()

        def dcr():
            return DCRBlock(num_feat, dcr_layers, growth, act=act)

        self.top_down = nn.ModuleList([dcr(), dcr(), dcr()])
        self.down = nn.ModuleList([_downsample(downsample, num_feat), _downsample(downsample, num_feat)])
        self.bottom_up = nn.ModuleList([dcr(), dcr()])  # 1/2, then full resolution
        self.fuse = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, x):
        full = self.top_down[0](x)
        half = self.top_down[1](self.down[0](full))
        quarter = self.top_down[2](self.down[1](half))
        half = self.bottom_up[0](half + F.interpolate(quarter, scale_factor=2, mode='nearest'))
        full = self.bottom_up[1](full + F.interpolate(half, scale_factor=2, mode='nearest'))
        return x + self.fuse(full)


class ChannelMeanMax(torch.autograd.Function):
    """``(B, C, H, W) -> (B, 2, H, W)``: the mean and the max over the channels, in at least float32.

    The values and gradients of ``cat[x.mean(1), x.amax(1)]`` (the max's gradient shared equally
    among tied channels), the input's gradient written by one ``torch.where``: autograd's backward
    converts the tie mask to int64 to count it and materialises the mean's broadcast gradient
    before adding it in. The training step 1.02-1.07x faster in float32 and bf16
    (``bench_optimisations.py``). In float32 rather than bfloat16: exact for the max, and a max over
    the channels of a bfloat16 tensor runs 5x slower on the CPU (torch 2.14).
    """

    @staticmethod
    def forward(ctx, x):
        wide = x.to(torch.promote_types(x.dtype, torch.float32))
        maximum = wide.amax(1, keepdim=True)
        ctx.save_for_backward(x, maximum)
        return torch.cat([wide.mean(1, keepdim=True), maximum], 1)

    @staticmethod
    def backward(ctx, grad):
        x, maximum = ctx.saved_tensors
        is_max = x == maximum
        ties = is_max.view(torch.uint8).sum(1, keepdim=True, dtype=torch.int32)
        grad_mean = grad[:, :1] / x.shape[1]
        return torch.where(is_max, grad_mean + grad[:, 1:] / ties, grad_mean).to(x.dtype)


class DualAttention(nn.Module):
    """Channel attention (squeeze-and-excitation) then spatial attention (7x7 conv over channel
    mean and max): ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat, reduction=8):
        super().__init__()
        self.channel = ChannelAttention(num_feat, squeeze_factor=min(reduction, num_feat))
        self.spatial = nn.Conv2d(2, 1, 7, 1, 3)

    def forward(self, x):
        x = self.channel(x)
        pooled = ChannelMeanMax.apply(x)
        return x * torch.sigmoid(self.spatial(pooled.to(x.dtype)))


class HADB(nn.Module):
    """Hierarchical Attentive Distillation Block: ``K`` features ``(B, C, H, W)`` -> ``(B, C, H, W)``.

    The features enter one after another: ``d_1 = f_1``; ``d_n = Conv1x1(DualAttention(
    Conv1x1(cat[d_{n-1}, f_n])))`` with 1x1 bottlenecks at the head and the end; returns ``d_K``.
    """

    def __init__(self, num_feat, num_inputs, reduction=8):
        super().__init__()
        self.num_inputs = num_inputs
        self.steps = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 *
                          num_feat, num_feat, 1), DualAttention(num_feat, reduction), nn.Conv2d(num_feat, num_feat, 1))
            for _ in range(num_inputs - 1))

    def forward(self, features):
        distilled = features[0]
        for step, feature in zip(self.steps, features[1:]):
            distilled = step(concat_channels([distilled, feature]))
        return distilled


class ConcatFusion(nn.Module):
    """One 1x1 convolution over ``K`` concatenated features ``(B, C, H, W)`` -> ``(B, C, H, W)``
    (the "without HADB" ablation, and the ``concat`` final fusion)."""

    def __init__(self, num_feat, num_inputs):
        super().__init__()
        self.num_inputs = num_inputs
        self.fuse = nn.Conv2d(num_inputs * num_feat, num_feat, 1)

    def forward(self, features):
        return self.fuse(concat_channels(features))


class RPF(nn.Module):
    """Residual Projected Feature Fusion: ``(L_o, L_e, L_d) -> L*``, all ``(B, C, H, W)``.

    ``R = L_e - L_d``; ``F = conv(R) + L_e``; ``L* = conv(L_o - conv(F))`` (3x3 convolutions).
    """

    def __init__(self, num_feat):
        super().__init__()
        self.residual = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.project = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.out = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, shallow, extracted, distilled):
        fused = self.residual(extracted - distilled) + extracted
        return self.out(shallow - self.project(fused))


class AddFusion(nn.Module):
    """``L* = L_o + L_e + L_d`` (the paper's addition ablation)."""

    def forward(self, shallow, extracted, distilled):
        return shallow + extracted + distilled


class FinalConcatFusion(ConcatFusion):
    """``L* = Conv1x1(cat[L_o, L_e, L_d])`` (the paper's concatenation ablation)."""

    def __init__(self, num_feat):
        super().__init__(num_feat, 3)

    def forward(self, shallow, extracted, distilled):
        return super().forward([shallow, extracted, distilled])


@ARCH_REGISTRY.register()
class MH2FNet(nn.Module):
    """MH2F-Net: ``(B, num_in_ch, H, W) -> (B, num_out_ch, H, W)`` for any ``H, W``.

    Args:
        num_in_ch, num_out_ch (int): image channels. Default: 3, 3.
        num_feat (int): feature width. Default: 32.
        num_blocks (int): ``N``, the number of MHEBs (paper's ablation: 4, 6, 8, 10). Default: 8.
        dcr_layers (int): densely connected 3x3 convolutions per DCR block. Default: 3.
        growth (int | None): channels each of them adds; ``None`` means ``num_feat // 2``.
        act (str): ``'lrelu'`` (LeakyReLU 0.2) or ``'relu'``. Default: ``'lrelu'``.
        downsample (str): ``'conv'`` (3x3 stride 2), ``'maxpool'`` or ``'avgpool'``.
        hierarchy_fusion (str): ``'hadb'`` or ``'concat'`` (the "without HADB" ablation).
        final_fusion (str): ``'rpf'``, ``'add'`` or ``'concat'`` (the paper's Figure 7 ablation).
        attention_reduction (int): channel-attention squeeze factor. Default: 8.
        global_residual (bool): add the input image to the output. Default: False (the paper
            argues against it).

    ``size_multiple`` (4): the sizes at which no padding happens inside ``forward``.
    """

    size_multiple = SIZE_MULTIPLE

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_feat=32,
                 num_blocks=8,
                 dcr_layers=3,
                 growth=None,
                 act='lrelu',
                 downsample='conv',
                 hierarchy_fusion='hadb',
                 final_fusion='rpf',
                 attention_reduction=8,
                 global_residual=False):
        super().__init__()
        if num_blocks < 2:
            raise InvalidOption(f'MH2FNet: num_blocks must be at least 2 (HADB fuses the first N-1), got {num_blocks}')
        _choice('act', act, tuple(ACTIVATIONS))
        _choice('downsample', downsample, DOWNSAMPLES)
        _choice('hierarchy_fusion', hierarchy_fusion, HIERARCHY_FUSIONS)
        _choice('final_fusion', final_fusion, FINAL_FUSIONS)
        if global_residual and num_in_ch != num_out_ch:
            raise InvalidOption('MH2FNet: global_residual needs num_in_ch == num_out_ch')
        growth = growth or num_feat // 2
        self.global_residual = global_residual

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.blocks = nn.ModuleList(
            MHEB(num_feat, dcr_layers, growth, act=act, downsample=downsample) for _ in range(num_blocks))
        if hierarchy_fusion == 'hadb':
            self.hierarchy = HADB(num_feat, num_blocks - 1, attention_reduction)
        else:
            self.hierarchy = ConcatFusion(num_feat, num_blocks - 1)
        if final_fusion == 'rpf':
            self.fusion = RPF(num_feat)
        elif final_fusion == 'add':
            self.fusion = AddFusion()
        else:
            self.fusion = FinalConcatFusion(num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        shallow = self.conv_first(pad_to_multiple(x, SIZE_MULTIPLE))
        outputs = []
        feature = shallow
        for block in self.blocks:
            feature = block(feature)
            outputs.append(feature)
        distilled = self.hierarchy(outputs[:-1])
        out = self.conv_last(self.fusion(shallow, outputs[-1], distilled))[..., :h, :w]
        return x + out if self.global_residual else out
