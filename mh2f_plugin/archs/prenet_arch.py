"""PReNet and its family: Progressive (Recurrent) Networks (Ren, Zuo, Hu, Zhu, Meng; CVPR 2019).

Each of ``num_iters`` stages sees the rainy image concatenated with the previous stage's result,
passes it through a 3x3 convolution (+ReLU), a recurrent unit that carries a state across stages
(convolutional LSTM in PReNet, GRU in an ablation, none in PRN), ``num_res`` residual blocks
(one block applied ``num_res`` times in the recursive ``_r`` variants), and a 3x3 convolution
whose output is added to the rainy image. The paper's variants and ablations are options:

===============  ======================================================
PReNet           ``recurrent: lstm`` (default)
PRN              ``recurrent: none``
PReNet_r, PRN_r  ``shared_res: true``
GRU ablation     ``recurrent: gru, residual: false``
LSTM ablation    ``residual: false`` (the output is predicted directly)
PReNet_x         ``stage_input: previous, residual: false`` (no rainy image after stage 1)
5 / 7 stages     ``num_iters: 5`` / ``7``
PReNet_real      ``recurrent_position: after_res, residual: false, num_iters: 4``: the authors'
                 real-rain network (``Generator_lstm`` of their ``generator.py``, which their
                 ``test_real.py`` builds for ``logs/real/PReNet1.pth`` and ``PReNet2.pth``)
VRGNet           ``last_tail: true``: VRGNet's deraining network (Wang, Yue, Xie, Zhao, Meng,
                 CVPR 2021; "PReNet-" in its README), whose last stage has a convolution of its
                 own (the image mean of its mean and log-variance head)
===============  ======================================================

Published defaults: 6 stages, 32 channels, 5 residual blocks. The authors' checkpoints load
after conversion (``mh2f_plugin.weights``), which fuses their four LSTM gate convolutions into one.
Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.errors import InvalidOption

RECURRENT_UNITS = ('lstm', 'gru', 'none')
STAGE_INPUTS = ('concat', 'previous')
RECURRENT_POSITIONS = ('before_res', 'after_res')


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM whose gates come from one 3x3 convolution over ``inputs`` (the caller
    concatenates the features and hidden states it wants): ``(inputs, c) -> (h, c)``, with
    ``inputs`` ``(B, in_ch, H, W)`` and ``h, c`` ``(B, num_feat, H, W)``. Gate order: i, f, g, o."""

    def __init__(self, in_ch, num_feat):
        super().__init__()
        self.gates = nn.Conv2d(in_ch, 4 * num_feat, 3, 1, 1)

    def forward(self, inputs, c):
        i, f, g, o = self.gates(inputs).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvGRUCell(nn.Module):
    """PReNet's convolutional GRU: ``(x, h) -> h``, all ``(B, num_feat, H, W)``.

    ``z, b = sigmoid(conv(cat[x, h]))``; ``g = tanh(conv(cat[b * h, x]))``; ``h' = (1 - z) h + z g``.
    """

    def __init__(self, num_feat):
        super().__init__()
        self.gates = nn.Conv2d(2 * num_feat, 2 * num_feat, 3, 1, 1)
        self.candidate = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1)

    def forward(self, x, h):
        z, b = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        g = torch.tanh(self.candidate(torch.cat([b * h, x], 1)))
        return (1 - z) * h + z * g


class ResBlock(nn.Module):
    """``relu(x + relu(conv(relu(conv(x)))))``, ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.ReLU(inplace=True))

    def forward(self, x):
        return F.relu(x + self.body(x))


class ResBlocks(nn.Module):
    """``num_res`` residual blocks in a chain, or one block applied ``num_res`` times (``shared``)."""

    def __init__(self, num_feat, num_res, shared=False):
        super().__init__()
        self.repeats = num_res if shared else 1
        self.body = nn.Sequential(*(ResBlock(num_feat) for _ in range(1 if shared else num_res)))

    def forward(self, x):
        for _ in range(self.repeats):
            x = self.body(x)
        return x


def _choice(arch, name, value, allowed):
    if value not in allowed:
        raise InvalidOption(f"{arch}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@ARCH_REGISTRY.register()
class PReNet(nn.Module):
    """PReNet: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        num_iters (int): stages T. Default: 6.
        num_res (int): residual blocks per stage. Default: 5.
        recurrent (str): ``'lstm'``, ``'gru'`` or ``'none'`` (PRN). Default: ``'lstm'``.
        shared_res (bool): one residual block applied ``num_res`` times (the ``_r`` variants).
        residual (bool): add the rainy image to each stage's output. Default: True.
        stage_input (str): ``'concat'`` (rainy image and previous result) or ``'previous'``.
        recurrent_position (str): the recurrent unit ``'before_res'`` (PReNet) or ``'after_res'``
            (the real-rain ``Generator_lstm``: the last convolution then reads the hidden state).
        last_tail (bool): the last stage's output convolution is one of its own (VRGNet).
    """

    def __init__(self,
                 num_in_ch=3,
                 num_feat=32,
                 num_iters=6,
                 num_res=5,
                 recurrent='lstm',
                 shared_res=False,
                 residual=True,
                 stage_input='concat',
                 recurrent_position='before_res',
                 last_tail=False):
        super().__init__()
        name = type(self).__name__
        _choice(name, 'recurrent', recurrent, RECURRENT_UNITS)
        _choice(name, 'stage_input', stage_input, STAGE_INPUTS)
        _choice(name, 'recurrent_position', recurrent_position, RECURRENT_POSITIONS)
        if num_iters < 1 or num_res < 1:
            raise InvalidOption(f'{name}: num_iters and num_res must be at least 1, got {num_iters} and {num_res}')
        self.num_iters, self.num_feat = num_iters, num_feat
        self.recurrent, self.residual, self.stage_input = recurrent, residual, stage_input
        self.recurrent_position = recurrent_position
        head_in = 2 * num_in_ch if stage_input == 'concat' else num_in_ch
        self.head = nn.Sequential(nn.Conv2d(head_in, num_feat, 3, 1, 1), nn.ReLU(inplace=True))
        if recurrent == 'lstm':
            self.lstm = ConvLSTMCell(2 * num_feat, num_feat)
        elif recurrent == 'gru':
            self.gru = ConvGRUCell(num_feat)
        self.body = ResBlocks(num_feat, num_res, shared_res)
        self.tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1)
        self.last_tail = nn.Conv2d(num_feat, num_in_ch, 3, 1, 1) if last_tail else None

    def forward(self, rainy):
        batch, _, height, width = rainy.shape
        h = c = rainy.new_zeros(batch, self.num_feat, height, width)
        out = rainy
        for stage in range(self.num_iters):
            x = self.head(torch.cat([rainy, out], 1) if self.stage_input == 'concat' else out)
            if self.recurrent_position == 'after_res':
                x = self.body(x)
            if self.recurrent == 'lstm':
                x, c = self.lstm(torch.cat([x, h], 1), c)
                h = x
            elif self.recurrent == 'gru':
                x = h = self.gru(x, h)
            if self.recurrent_position == 'before_res':
                x = self.body(x)
            last = stage == self.num_iters - 1 and self.last_tail is not None
            out = (self.last_tail if last else self.tail)(x)
            if self.residual:
                out = rainy + out
        return out


@ARCH_REGISTRY.register()
class PRN(PReNet):
    """PRN: PReNet without the recurrent unit (``recurrent: none``); same arguments."""

    def __init__(self, recurrent='none', **kwargs):
        super().__init__(recurrent=recurrent, **kwargs)


@ARCH_REGISTRY.register()
class PReNet_r(PReNet):
    """PReNet_r: one residual block applied ``num_res`` times (``shared_res: true``); same arguments."""

    def __init__(self, shared_res=True, **kwargs):
        super().__init__(shared_res=shared_res, **kwargs)


@ARCH_REGISTRY.register()
class PRN_r(PReNet):
    """PRN_r: no recurrent unit and one shared residual block; same arguments."""

    def __init__(self, recurrent='none', shared_res=True, **kwargs):
        super().__init__(recurrent=recurrent, shared_res=shared_res, **kwargs)


@ARCH_REGISTRY.register()
class PReNet_real(PReNet):
    """The authors' real-rain PReNet (``Generator_lstm``): 4 stages, the LSTM after the residual
    blocks, the image predicted directly; same arguments."""

    def __init__(self, num_iters=4, residual=False, recurrent_position='after_res', **kwargs):
        super().__init__(num_iters=num_iters, residual=residual, recurrent_position=recurrent_position, **kwargs)


@ARCH_REGISTRY.register()
class VRGNet(PReNet):
    """VRGNet's deraining network (its "BNet"): PReNet whose last stage has an output convolution of
    its own (``last_tail: true``); same arguments."""

    def __init__(self, last_tail=True, **kwargs):
        super().__init__(last_tail=last_tail, **kwargs)
