"""SIRR (Wei, Meng, Zhao, Xu, Wu; CVPR 2019) and DDN (Fu, Huang, Zeng, Huang, Ding, Paisley; CVPR 2017).

SIRR's network is DDN's, as both authors' TensorFlow code builds it (op for op, checked on their
graphs); SIRR differs only in its training. ``DDN`` is the same class under DDN's name. A guided
filter (radius 15, eps 1, zero-padded box means over the valid pixels) splits the rainy image into
a base and a detail layer; a 26-layer residual network on the detail layer (3x3 convolutions of
16 channels, each followed by batch normalisation and ReLU, shortcuts every two layers, a last
convolution with batch normalisation) predicts a negative residual that is added to the rainy
image. The batch normalisation always uses the statistics of the current batch, at test time too
(``tf.nn.moments`` in the authors' code): ``track_running_stats=False`` here. SIRR's
semi-supervised part (a Gaussian mixture on real rain) is a training loss, not part of the network.
Images are ``(B, C, H, W)`` in [0, 1]; the output has the input's shape.
"""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


def box_sum(x, radius):
    """The sum of ``x`` over the ``(2 radius + 1)`` square around each pixel, zero outside the
    image: ``(B, C, H, W)``, in constant time per pixel (sums of cumulative sums)."""
    size = 2 * radius + 1
    c = F.pad(x, (radius + 1, radius, radius + 1, radius)).cumsum(-1).cumsum(-2)
    return c[..., size:, size:] - c[..., :-size, size:] - c[..., size:, :-size] + c[..., :-size, :-size]


def guided_filter_base(img, radius=15, eps=1.0):
    """The guided filter of ``img`` guided by itself, per channel: ``(B, C, H, W)``. Box means are
    over the pixels inside the image, computed in float64, as the authors' OpenCV filter on
    float64 images does."""
    x = img.double()
    count = box_sum(torch.ones_like(x[:1, :1]), radius)

    def box_mean(y):
        return box_sum(y, radius) / count

    mean = box_mean(x)
    var = box_mean(x * x) - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    return (box_mean(a) * x + box_mean(b)).to(img.dtype)


def _conv_bn(in_ch, out_ch):
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch, eps=1e-5, track_running_stats=False))


@ARCH_REGISTRY.register()
class SIRR(nn.Module):
    """SIRR (DDN's network): ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 16.
        num_blocks (int): two-layer residual units between the first and last layers (26 layers
            in all for the default 12). Default: 12.
        radius (int), eps (float): the guided filter's. Default: 15, 1.0.
    """

    def __init__(self, num_in_ch=3, num_feat=16, num_blocks=12, radius=15, eps=1.0):
        super().__init__()
        self.radius, self.eps = radius, eps
        self.head = _conv_bn(num_in_ch, num_feat)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _conv_bn(num_feat, num_feat), nn.ReLU(inplace=True), _conv_bn(num_feat, num_feat), nn.ReLU(
                    inplace=True)) for _ in range(num_blocks))
        self.tail = _conv_bn(num_feat, num_in_ch)

    def forward(self, rainy):
        detail = rainy - guided_filter_base(rainy, self.radius, self.eps)
        x = F.relu(self.head(detail))
        for block in self.blocks:
            x = x + block(x)
        return rainy + self.tail(x)


@ARCH_REGISTRY.register()
class DDN(SIRR):
    """DDN, the deep detail network: SIRR's network under its first name; same arguments."""
