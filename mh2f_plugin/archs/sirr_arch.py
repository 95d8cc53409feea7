"""SIRR: Semi-supervised Image Rain Removal (Wei, Meng, Zhao, Xu, Wu; CVPR 2019), a comparison baseline.

SIRR's network is DDN's (Fu et al., CVPR 2017), as the authors' TensorFlow code builds it: a guided
filter (radius 15, eps 1, zero-padded box means over the valid pixels) splits the rainy image into
a base and a detail layer; a 26-layer residual network on the detail layer (3x3 convolutions of
16 channels, each followed by batch normalisation and ReLU, shortcuts every two layers, a last
convolution with batch normalisation) predicts a negative residual that is added to the rainy
image. The batch normalisation always uses the statistics of the current batch, at test time too
(``tf.nn.moments`` in the authors' code): ``track_running_stats=False`` here. SIRR's
semi-supervised part (a Gaussian mixture on real rain) is a training loss, not part of the network.
Images are ``(B, C, H, W)`` in [0, 1]; the output has the input's shape.
"""
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


def guided_filter_base(img, radius=15, eps=1.0):
    """The guided filter of ``img`` guided by itself, per channel: ``(B, C, H, W)``."""

    def box_mean(x):
        return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    mean = box_mean(img)
    var = box_mean(img * img) - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    return box_mean(a) * img + box_mean(b)


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
