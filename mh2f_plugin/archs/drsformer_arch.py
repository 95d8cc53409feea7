"""DRSformer: Learning A Sparse Transformer Network for Effective Image Deraining (Chen, Li, Li, Pan;
CVPR 2023).

Restormer's four-level encoder-decoder (``restormer_arch``) with other transformer blocks, no
refinement blocks, and, in the authors' main file, two mixture-of-experts modules (MEFC).

* Top-k sparse attention (TKSA): Restormer's channel attention, whose ``C x C`` logits (per head,
  temperature-scaled) are masked four ways: each row keeps its ``k`` largest logits (the indices
  ``torch.topk`` returns, so exactly ``k`` even with ties) for ``k = int(C/2), int(2C/3),
  int(3C/4), int(4C/5)``, the rest set to ``-inf``. The four row softmaxes are summed with learnt
  scalar weights ``attn1..attn4`` (not normalised), then applied to the values.
* Mixed-scale feed-forward (MSFN): a 1x1 convolution to ``2h`` channels (``h = int(dim * 2.66)``);
  a 3x3 and a 5x5 depth-wise convolution of it (+ReLU), each split in halves; the first halves of
  both concatenated and reduced by a 3x3 grouped convolution (two channels in, one out per group;
  with ``h`` odd one group reads one channel of each half), the second halves by a 5x5 one (+ReLU
  each); a 1x1 convolution of both back to ``dim``.
* MEFC, after the patch embedding (``encoder_level0``) and after the top decoder level
  (``refinement``): its output replaces the features. From the features' mean over the image, two
  linear layers and a softmax give, for each of 4 steps, weights of 8 experts: separable
  convolutions 1x1, 3x3, 5x5 and 7x7, dilated (2) convolutions 3x3, 5x5 and 7x7, and 3x3 average
  pooling. The features go through a 1x1 convolution (+ReLU), then 4 steps of
  ``relu(s + relu(conv1x1(cat[expert_j(s) * weight_j])))``.

The authors published two network files: ``DRSformer_arch.py``, with MEFC (``mefc: true``), which
their test script loads and which their Rain200H, DID-Data and DDN-Data weights need; and
``DRSformer_arch_200L+SPA.py``, without it (``mefc: false``), for their Rain200L and SPA-Data
weights. Every layer, module and parameter is named as in their code, so their BasicSR files
(``{'params': ...}``) load as they are, each into its variant. The attention and the experts'
weights depend on the whole image, so tiles give other results than the whole image. Their test
script runs the whole image, padded on the bottom and right by reflection to a multiple of 8 and
cropped back, then clamps to [0, 1]; ``forward`` pads and crops the same way (replication where the
image is smaller than the pad). Images are ``(B, C, H, W)`` RGB in [0, 1], any size; the output
has the input's shape and is not clamped.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.restormer_arch import Attention, TransformerBlock, TransformerUNet
from mh2f_plugin.errors import InvalidOption

TOP_K_FRACTIONS = ((1, 2), (2, 3), (3, 4), (4, 5))
MEFC_STEPS = 4
SEPARABLE_KERNELS = (1, 3, 5, 7)
DILATED_KERNELS = (3, 5, 7)
NUM_EXPERTS = len(SEPARABLE_KERNELS) + len(DILATED_KERNELS) + 1


def _sparse_softmax(logits, k):
    """Softmax over the last axis of ``logits`` restricted to the ``k`` largest entries of each row."""
    index = logits.topk(k, dim=-1).indices
    return torch.full_like(logits, float('-inf')).scatter(-1, index, logits.gather(-1, index)).softmax(-1)


class SparseAttention(Attention):
    """Top-k sparse attention: ``(B, dim, H, W) -> (B, dim, H, W)``, at least 2 channels per head.

    The four weighted softmaxes are summed before the product with the values (one matrix product
    instead of four; the same sum, up to rounding).
    """

    def __init__(self, dim, num_heads):
        super().__init__(dim, num_heads)
        self.attn1 = nn.Parameter(torch.tensor([0.2]))
        self.attn2 = nn.Parameter(torch.tensor([0.2]))
        self.attn3 = nn.Parameter(torch.tensor([0.2]))
        self.attn4 = nn.Parameter(torch.tensor([0.2]))

    def mix(self, logits, v):
        channels = logits.shape[-1]
        weights = (self.attn1, self.attn2, self.attn3, self.attn4)
        probs = sum(
            _sparse_softmax(logits, channels * num // den) * weight
            for (num, den), weight in zip(TOP_K_FRACTIONS, weights))
        return probs @ v


class MixedScaleFeedForward(nn.Module):
    """Mixed-scale feed-forward network: ``(B, dim, H, W) -> (B, dim, H, W)``."""

    def __init__(self, dim, expansion):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=False)
        self.dwconv3x3 = nn.Conv2d(2 * hidden, 2 * hidden, 3, 1, 1, groups=2 * hidden, bias=False)
        self.dwconv5x5 = nn.Conv2d(2 * hidden, 2 * hidden, 5, 1, 2, groups=2 * hidden, bias=False)
        self.dwconv3x3_1 = nn.Conv2d(2 * hidden, hidden, 3, 1, 1, groups=hidden, bias=False)
        self.dwconv5x5_1 = nn.Conv2d(2 * hidden, hidden, 5, 1, 2, groups=hidden, bias=False)
        self.project_out = nn.Conv2d(2 * hidden, dim, 1, bias=False)

    def forward(self, x):
        x = self.project_in(x)
        first3, second3 = F.relu(self.dwconv3x3(x)).chunk(2, 1)
        first5, second5 = F.relu(self.dwconv5x5(x)).chunk(2, 1)
        first = F.relu(self.dwconv3x3_1(torch.cat([first3, first5], 1)))
        second = F.relu(self.dwconv5x5_1(torch.cat([second3, second5], 1)))
        return self.project_out(torch.cat([first, second], 1))


class Expert(nn.Module):
    """``op``, a sequence of convolutions without bias: ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, *layers):
        super().__init__()
        self.op = nn.Sequential(*layers)

    def forward(self, x):
        return self.op(x)


def _depthwise(dim, kernel_size, dilation=1):
    return nn.Conv2d(dim, dim, kernel_size, 1, dilation * (kernel_size // 2), dilation=dilation, groups=dim, bias=False)


def _pointwise(dim):
    return nn.Conv2d(dim, dim, 1, bias=False)


def _experts(dim):
    """The 8 experts in the authors' order: separable, dilated, average pooling."""
    separable = (
        Expert(_depthwise(dim, k), _pointwise(dim), nn.ReLU(), _depthwise(dim, k), _pointwise(dim))
        for k in SEPARABLE_KERNELS)
    dilated = (Expert(_depthwise(dim, k, dilation=2), _pointwise(dim)) for k in DILATED_KERNELS)
    return [*separable, *dilated, nn.AvgPool2d(3, 1, 1, count_include_pad=False)]


class ExpertStep(nn.Module):
    """One step: ``relu(conv1x1(cat[expert_j(x) * weights[:, j]]))``, ``x`` ``(B, C, H, W)`` and
    ``weights`` ``(B, 8)`` -> ``(B, C, H, W)``."""

    def __init__(self, dim):
        super().__init__()
        self._ops = nn.ModuleList(_experts(dim))
        self._out = nn.Sequential(nn.Conv2d(NUM_EXPERTS * dim, dim, 1, bias=False), nn.ReLU())

    def forward(self, x, weights):
        weights = weights[:, :, None, None, None]
        return self._out(torch.cat([expert(x) * weights[:, j] for j, expert in enumerate(self._ops)], 1))


class ExpertGates(nn.Module):
    """The experts' logits from the image mean: ``(B, C, H, W) -> (B, steps, 8)``."""

    def __init__(self, dim):
        super().__init__()
        outputs = MEFC_STEPS * NUM_EXPERTS
        self.ca_fc = nn.Sequential(nn.Linear(dim, 2 * outputs), nn.ReLU(), nn.Linear(2 * outputs, outputs))

    def forward(self, x):
        return self.ca_fc(x.mean((2, 3))).reshape(-1, MEFC_STEPS, NUM_EXPERTS)


class ExpertSteps(nn.Module):
    """``s = relu(conv1x1(x))``, then ``s = relu(s + step_i(s, weights[:, i]))`` for each step:
    ``x`` ``(B, C, H, W)`` and ``weights`` ``(B, steps, 8)`` -> ``(B, C, H, W)``."""

    def __init__(self, dim):
        super().__init__()
        self.preprocess = Expert(nn.Conv2d(dim, dim, 1, bias=False), nn.ReLU())
        self._ops = nn.ModuleList(ExpertStep(dim) for _ in range(MEFC_STEPS))

    def forward(self, x, weights):
        s = self.preprocess(x)
        for index, step in enumerate(self._ops):
            s = F.relu(s + step(s, weights[:, index]))
        return s


class MEFC(nn.Module):
    """Mixture-of-experts feature compensator: ``(B, C, H, W) -> (B, C, H, W)``, non-negative."""

    def __init__(self, dim):
        super().__init__()
        self.layers = nn.ModuleList([ExpertGates(dim), ExpertSteps(dim)])

    def forward(self, x):
        gates, steps = self.layers
        return steps(x, gates(x).softmax(-1))


@ARCH_REGISTRY.register()
class DRSformer(TransformerUNet):
    """DRSformer: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``, any ``H, W`` (padded inside to
    multiples of ``size_multiple``, 8, and cropped back).

    Level ``i`` (0 to 3) works at ``num_feat * 2**i`` channels with ``num_heads[i]`` heads; the top
    decoder level at ``2 * num_feat`` with ``num_heads[0]``. Every head needs at least 2 channels.
    Defaults are the authors' (their ``Options/Deraining.yml``): 33,655,424 parameters with MEFC,
    32,610,304 without. Their constructor's ``bias`` and ``LayerNorm_type`` are fixed at those
    values (no biases, layer norm with bias).

    Args:
        num_in_ch (int): image channels (the authors' ``inp_channels`` and ``out_channels``). Default: 3.
        num_feat (int): channels of the top level (their ``dim``); even. Default: 48.
        num_blocks (list[int]): transformer blocks at each of the four levels, each used by the
            encoder and again by the decoder. Default: [4, 6, 6, 8].
        num_heads (list[int]): attention heads at each level (their ``heads``). Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): feed-forward hidden width over block width (truncated). Default: 2.66.
        mefc (bool): the two MEFC modules of ``DRSformer_arch.py`` (the authors' Rain200H, DID-Data and
            DDN-Data weights); ``False`` is ``DRSformer_arch_200L+SPA.py`` (their Rain200L and
            SPA-Data weights). Default: True.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_feat=48,
                 num_blocks=(4, 6, 6, 8),
                 num_heads=(1, 2, 4, 8),
                 ffn_expansion_factor=2.66,
                 mefc=True):
        if not isinstance(mefc, bool):
            raise InvalidOption(f'{type(self).__name__}: mefc must be true or false, got {mefc!r}')

        def block(dim, heads):
            return TransformerBlock(dim, SparseAttention(dim, heads), MixedScaleFeedForward(dim, ffn_expansion_factor))

        super().__init__(
            num_in_ch,
            num_feat,
            num_blocks,
            num_heads,
            ffn_expansion_factor,
            block,
            entry=MEFC if mefc else None,
            refinement=MEFC if mefc else None,
            min_head_channels=2)
