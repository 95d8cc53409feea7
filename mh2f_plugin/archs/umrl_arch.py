"""UMRL: Uncertainty guided Multi-scale Residual Learning (Yasarla and Patel, CVPR 2019), a baseline.

As the authors' code (rajeevyasarla/UMRL--using-Cycle-Spinning) builds and tests it. A densely
connected encoder-decoder on the image scaled to [-1, 1]: dense layers (norm, ReLU, 1x1
convolution to ``4 g``, norm, ReLU, 5x5 convolution to ``g``, concatenated to their input) and
transitions (norm, ReLU, 1x1 convolution, then 2x2 average pooling down or nearest x2 up) down to
1/16 and back. At 1/4 and at 1/2 a shared residual estimator predicts the rain at that scale
(``tanh``), and a shared confidence estimator weighs it (``sigmoid``) before it joins the
decoder. At full scale two convolutions and ``tanh`` give the rain ``r``; the image is
``tanh(conv3x3(lrelu(conv7x7(x - r))))``, in [-1, 1].

Two test-time conventions of the authors' ``umrl_test.py`` are options:

* ``norm_statistics: image`` (default): the script calls ``netG.train()`` on one image at a time,
  so every normalisation uses that image's own mean and variance (per channel, over the pixels),
  and the published files' running statistics are never read. ``running`` uses them instead
  (``eval()``). Either way, every image of a batch is normalised on its own.
* ``output_range: stretch`` (default): the script maps the output to [0, 1] by its own minimum
  and maximum over all pixels and channels; ``affine`` maps [-1, 1] to [0, 1].

Both make the result depend on the whole image: tiles each get their own statistics and stretch.
The network needs sides that are multiples of 16 (``size_multiple``), and of at least 32 for the
statistics at 1/16 scale; other images are padded at the bottom and right (reflection, else
replication) and the result cropped back, where the authors' script stops.
Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_size
from mh2f_plugin.errors import InvalidOption

NORM_STATISTICS = ('image', 'running')
OUTPUT_RANGES = ('stretch', 'affine')


class Norm(nn.BatchNorm2d):
    """``BatchNorm2d`` (same parameters and buffers) that normalises each image by its own per-channel
    statistics (``image``: instance normalisation with the batch norm's affine) or by the running ones."""

    def __init__(self, num_features, statistics):
        super().__init__(num_features)
        self.statistics = statistics

    def forward(self, x):
        if self.statistics == 'running':
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0., self.eps)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class DenseLayer(nn.Module):
    """``cat[x, conv_k(relu(norm(conv_1(relu(norm(x))))))]``: ``in_ch -> in_ch + growth`` channels."""

    def __init__(self, in_ch, growth, kernel_size, statistics):
        super().__init__()
        self.body = nn.Sequential(
            Norm(in_ch, statistics), nn.ReLU(inplace=True), nn.Conv2d(in_ch, 4 * growth, 1, bias=False),
            Norm(4 * growth, statistics), nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, kernel_size, 1, kernel_size // 2, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class Transition(nn.Module):
    """``resample(conv1x1(relu(norm(x))))``, ``resample`` 2x2 average pooling (``down``), nearest x2
    (``up``) or none."""

    def __init__(self, in_ch, out_ch, resample, statistics):
        super().__init__()
        self.resample = resample
        self.body = nn.Sequential(
            Norm(in_ch, statistics), nn.ReLU(inplace=True), nn.Conv2d(in_ch, out_ch, 1, bias=False))

    def forward(self, x):
        x = self.body(x)
        if self.resample == 'down':
            return F.avg_pool2d(x, 2)
        return F.interpolate(x, scale_factor=2, mode='nearest') if self.resample == 'up' else x


def _stage(in_ch, growth, out_ch, resample, statistics, kernel_size=5):
    """A dense layer then a transition: ``in_ch -> out_ch`` channels."""
    return nn.Sequential(
        DenseLayer(in_ch, growth, kernel_size, statistics), Transition(in_ch + growth, out_ch, resample, statistics))


class ResidualEstimator(nn.Module):
    """The rain at one scale: three dense stages (3x3), a 3x3 convolution (+LeakyReLU 0.2), a 3x3
    convolution and ``tanh``: ``(B, 2 num_feat, h, w) -> (B, out_ch, h, w)``."""

    def __init__(self, num_feat, out_ch, statistics):
        super().__init__()
        self.body = nn.Sequential(
            _stage(2 * num_feat, num_feat, num_feat, None, statistics, 3),
            _stage(num_feat, num_feat, num_feat, None, statistics, 3),
            _stage(num_feat, num_feat, num_feat, None, statistics, 3), nn.Conv2d(num_feat, num_feat // 2, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(num_feat // 2, out_ch, 3, 1, 1), nn.Tanh())

    def forward(self, x):
        return self.body(x)


class ConfidenceEstimator(nn.Module):
    """The confidence in a rain estimate: a 3x3 convolution (no activation), two dense stages
    (3x3), a 3x3 convolution and ``sigmoid``: ``(B, in_ch, h, w) -> (B, out_ch, h, w)``."""

    def __init__(self, in_ch, width, out_ch, statistics):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, 1, 1), _stage(width, width, width, None, statistics, 3),
            _stage(width, width, width, None, statistics, 3), nn.Conv2d(width, out_ch, 3, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return self.body(x)


@ARCH_REGISTRY.register()
class UMRL(nn.Module):
    """UMRL: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``, H and W multiples of 16.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 32.
        norm_statistics (str): ``'image'`` (each image's own, as the authors test) or ``'running'``.
        output_range (str): ``'stretch'`` (each output by its own minimum and maximum, as the authors
            test) or ``'affine'`` (``(y + 1) / 2``).
    """

    size_multiple = 16

    def __init__(self, num_in_ch=3, num_feat=32, norm_statistics='image', output_range='stretch'):
        super().__init__()
        for name, value, allowed in (('norm_statistics', norm_statistics, NORM_STATISTICS),
                                     ('output_range', output_range, OUTPUT_RANGES)):
            if value not in allowed:
                raise InvalidOption(f"UMRL: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        self.output_range = output_range
        n, half, s = num_feat, num_feat // 2, norm_statistics
        self.encoder = nn.ModuleList([
            _stage(num_in_ch, n - num_in_ch, n, 'down', s),
            _stage(n, n, n, 'down', s),
            _stage(n, n, n, 'down', s),
            _stage(n, n, n, 'down', s),
        ])
        self.up16 = _stage(n, n, n, 'up', s)
        self.up8 = _stage(2 * n, n, n, 'up', s)
        self.up4 = _stage(2 * n + num_in_ch, n, n, 'up', s)
        self.up2 = _stage(2 * n + num_in_ch, half, half, 'up', s)
        self.refine = _stage(half, half, half, None, s)
        self.residual = ResidualEstimator(n, num_in_ch, s)
        self.confidence = ConfidenceEstimator(n + num_in_ch, half, num_in_ch, s)
        self.rain = nn.Sequential(
            nn.Conv2d(half, half, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(half, num_in_ch, 3, 1, 1),
            nn.Tanh())
        self.clean = nn.Sequential(
            nn.Conv2d(num_in_ch, 8, 7, 1, 3), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(8, num_in_ch, 3, 1, 1),
            nn.Tanh())

    def _weighted_rain(self, decoded, skip):
        rain = self.residual(torch.cat([decoded, skip], 1))
        return rain * self.confidence(torch.cat([decoded, rain], 1))

    def forward(self, rainy):
        height, width = rainy.shape[-2:]
        sides = [max(2 * self.size_multiple, side + -side % self.size_multiple) for side in (height, width)]
        if sides != [height, width]:
            return self.forward(pad_to_size(rainy, *sides))[..., :height, :width]
        x = rainy * 2 - 1
        half_scale = self.encoder[0](x)
        quarter = self.encoder[1](half_scale)
        eighth = self.encoder[2](quarter)
        decoded = self.up16(self.encoder[3](eighth))
        decoded = self.up8(torch.cat([decoded, eighth], 1))
        decoded = self.up4(torch.cat([decoded, quarter, self._weighted_rain(decoded, quarter)], 1))
        decoded = self.up2(torch.cat([decoded, half_scale, self._weighted_rain(decoded, half_scale)], 1))
        clean = self.clean(x - self.rain(self.refine(decoded)))
        if self.output_range == 'affine':
            return (clean + 1) / 2
        low = clean.amin((1, 2, 3), keepdim=True)
        return (clean - low) / (clean.amax((1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
