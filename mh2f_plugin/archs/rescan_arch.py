"""RESCAN: Recurrent Squeeze-and-Excitation Context Aggregation Net (Li, Wu, Lin, Liu, Zha; ECCV 2018).

A comparison baseline, as the authors' code builds it. A context aggregation network of
``depth`` layers predicts the rain layer: ``depth - 2`` convolutional GRU layers with dilations
1, 1, 2, 4, ..., each output passed through squeeze-and-excitation and LeakyReLU 0.2, then a
3x3 + SE + 1x1 decoder. ``num_stages`` stages repeat it on ``rainy - rain``; each GRU carries
its state to the same layer of the next stage. Prediction frame: ``full`` (the official
default) takes each stage's prediction as the whole rain layer; ``add`` adds it to the previous
stages' (detached) estimate. The output is ``rainy - rain``.
Published defaults: 24 channels, depth 7, 4 stages, SE with 6 hidden units, frame ``full``.
The authors trained on BGR images; ``mh2f_plugin.weights`` converts their checkpoints to RGB.
Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.errors import InvalidOption

FRAMES = ('full', 'add')


class SqueezeExcitation(nn.Module):
    """RESCAN's SE: global average, ``hidden`` units (ReLU), sigmoid channel weights."""

    def __init__(self, num_feat, hidden=6):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(num_feat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_feat), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3)))[..., None, None]


class ConvGRULayer(nn.Module):
    """``(x, h) -> h'``: a convolutional GRU (dilated 3x3 on the input, plain 3x3 on the state)
    whose output ``LeakyReLU(SE(h'))`` is both the layer's output and its next state.
    Without a state (the first stage): ``h' = sigmoid(z) * tanh(n)``."""

    def __init__(self, in_ch, num_feat, dilation, se_hidden=6):
        super().__init__()
        self.conv_x = nn.Conv2d(in_ch, 3 * num_feat, 3, 1, dilation, dilation=dilation)  # z, r, n
        self.conv_h = nn.Conv2d(num_feat, 2 * num_feat, 3, 1, 1)  # z, r
        self.conv_hn = nn.Conv2d(num_feat, num_feat, 3, 1, 1)  # n, applied to r * h
        self.se = SqueezeExcitation(num_feat, se_hidden)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x, h=None):
        xz, xr, xn = self.conv_x(x).chunk(3, 1)
        if h is None:
            h = torch.sigmoid(xz) * torch.tanh(xn)
        else:
            hz, hr = self.conv_h(h).chunk(2, 1)
            z, r = torch.sigmoid(xz + hz), torch.sigmoid(xr + hr)
            h = (1 - z) * h + z * torch.tanh(xn + self.conv_hn(r * h))
        return self.act(self.se(h))


@ARCH_REGISTRY.register()
class RESCAN(nn.Module):
    """RESCAN: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 24.
        depth (int): context aggregation depth (at least 3): ``depth - 2`` GRU layers. Default: 7.
        num_stages (int): recurrent stages. Default: 4.
        se_hidden (int): hidden units of the SE blocks. Default: 6.
        frame (str): ``'full'`` or ``'add'``, see above. Default: ``'full'``.
    """

    def __init__(self, num_in_ch=3, num_feat=24, depth=7, num_stages=4, se_hidden=6, frame='full'):
        super().__init__()
        if depth < 3:
            raise InvalidOption(f'RESCAN: depth must be at least 3, got {depth}')
        if frame not in FRAMES:
            raise InvalidOption(f"RESCAN: frame must be one of {', '.join(map(repr, FRAMES))}, got {frame!r}")
        self.num_stages, self.frame = num_stages, frame
        dilations = [1] + [2**i for i in range(depth - 3)]
        self.layers = nn.ModuleList(
            ConvGRULayer(num_in_ch if i == 0 else num_feat, num_feat, d, se_hidden=se_hidden)
            for i, d in enumerate(dilations))
        self.decoder = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), SqueezeExcitation(num_feat, se_hidden), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, num_in_ch, 1))

    def forward(self, rainy):
        states = [None] * len(self.layers)
        rain, x = None, rainy
        for _ in range(self.num_stages):
            for index, layer in enumerate(self.layers):
                x = states[index] = layer(x, states[index])
            stage_rain = self.decoder(x)
            rain = stage_rain + rain.detach() if self.frame == 'add' and rain is not None else stage_rain
            x = rainy - rain
        return x
