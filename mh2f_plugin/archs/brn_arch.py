"""BRN: Bilateral Recurrent Network (Ren, Hu, Zuo, Chen, Lin, Meng; IEEE TIP 2020), a comparison baseline.

Two PReNet-like recurrent networks run side by side for ``num_iters`` stages, one estimating the
rain layer and one the clean image, coupled through their LSTMs ("bilateral LSTMs"): each LSTM's
gates see its own stage features, its own hidden state and the other stream's hidden state.

* rain stream: ``conv(cat[rainy, rain])`` -> LSTM over ``cat[features, h_rain, h_image]`` ->
  ``num_res_rain`` residual blocks -> 3x3 convolution: the new rain layer;
* image stream: ``conv(cat[rainy, image, rain])`` -> LSTM over ``cat[features, h_image, h_rain]``
  -> ``num_res`` residual blocks -> 3x3 convolution: the new image (predicted directly).

Both start from the rainy image. The authors' code evaluates with 8 stages and declares five
residual blocks in the rain stream but applies only the first three; their checkpoints load
after conversion (``mh2f_plugin.weights``). Images are ``(B, C, H, W)`` RGB in [0, 1].
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.archs.prenet_arch import ConvLSTMCell, ResBlocks
from mh2f_plugin.errors import InvalidOption


class _Stream(nn.Module):
    """One stream: 3x3 conv + ReLU, a ConvLSTM over ``cat[features, own h, other h]``, residual
    blocks, a 3x3 output conv. ``(inputs, h, c, other_h) -> (out, h, c)``."""

    def __init__(self, in_ch, out_ch, num_feat, num_res):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(in_ch, num_feat, 3, 1, 1), nn.ReLU(inplace=True))
        self.lstm = ConvLSTMCell(3 * num_feat, num_feat)
        self.body = ResBlocks(num_feat, num_res)
        self.tail = nn.Conv2d(num_feat, out_ch, 3, 1, 1)

    def forward(self, inputs, h, c, other_h):
        h, c = self.lstm(torch.cat([self.head(inputs), h, other_h], 1), c)
        return self.tail(self.body(h)), h, c


@ARCH_REGISTRY.register()
class BRN(nn.Module):
    """BRN: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_feat (int): feature channels of both streams. Default: 32.
        num_iters (int): stages. Default: 8 (the authors' training and test setting).
        num_res (int): residual blocks of the image stream. Default: 5.
        num_res_rain (int): residual blocks of the rain stream. Default: 3.
    """

    def __init__(self, num_in_ch=3, num_feat=32, num_iters=8, num_res=5, num_res_rain=3):
        super().__init__()
        if num_iters < 1:
            raise InvalidOption(f'BRN: num_iters must be at least 1, got {num_iters}')
        self.num_iters, self.num_feat = num_iters, num_feat
        self.rain = _Stream(2 * num_in_ch, num_in_ch, num_feat, num_res=num_res_rain)
        self.image = _Stream(3 * num_in_ch, num_in_ch, num_feat, num_res=num_res)

    def forward(self, rainy):
        batch, _, height, width = rainy.shape
        h = c = h_rain = c_rain = rainy.new_zeros(batch, self.num_feat, height, width)
        image = rain = rainy
        for _ in range(self.num_iters):
            rain, h_rain, c_rain = self.rain(torch.cat([rainy, rain], 1), h_rain, c_rain, h)
            image, h, c = self.image(torch.cat([rainy, image, rain], 1), h, c, h_rain)
        return image
