"""RCDNet: Rain Convolutional Dictionary Network (Wang, Xie, Zhao, Meng; CVPR 2020), a comparison baseline.

The rainy image is modelled as ``O = B + sum_n C_n * M_n``: a background ``B`` plus rain maps
``M`` (``num_m`` channels) convolved with 9x9 rain kernels ``C``. Each of ``num_stages`` stages
unfolds one step of proximal gradient descent: the rain maps take a gradient step through the
kernels (a transposed convolution) and a learned proximal network (``num_res`` residual blocks
with batch normalisation, then a learned soft threshold); the background takes a gradient step
with the current rain layer and a second proximal network, which also carries ``num_z`` extra
"dual" channels from stage to stage. The first stage starts from ``B0`` (a proximal network over
the image and a 3x3 filtering of it); a last proximal network refines the final background.
Step sizes, thresholds, kernels (shared by all stages after the first) and filters are learned.

As in the authors' code, images are scaled to [0, 255] inside (``img_range``), the kernels are
initialised from synthetic rain-streak shapes (``rain_kernels``), and step sizes from 1 and 5.
Images are ``(B, C, H, W)`` RGB in [0, 1]; the output has the input's shape.
"""
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from mh2f_plugin.errors import InvalidOption

KERNEL_SIZE = 9


def rain_streak_kernel(size, length, inner, std):
    """A ``size`` x ``size`` kernel summing to 1: a Gaussian streak, ``length`` times longer
    vertically, flat over a core of ``round((size - 1) / 2 * inner)`` pixels either side."""
    half = (size - 1) // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    core = np.floor(half * inner + 0.5)
    x = np.sign(x) * (np.maximum(np.abs(x), core) - core)
    y = np.sign(y) * (np.maximum(np.abs(y), core) - core) / length
    kernel = np.exp(-(x * x + y * y) / (2 * std * std))
    kernel[kernel < np.finfo(np.float64).eps * kernel.max()] = 0
    return kernel / kernel.sum()


def rain_kernels(num_in_ch, num_m, size=KERNEL_SIZE):
    """``(num_in_ch, num_m, size, size)`` initial rain kernels: the first 12 thin streaks of
    growing length, the rest wider ones (the authors' initialisation), one set per channel."""
    thin = [rain_streak_kernel(size, 2.5 + i / 4, 0.1, std=0.25) for i in range(1, min(num_m, 12) + 1)]
    wide = [rain_streak_kernel(size, 2 + i / 4, 0.2, std=0.5) for i in range(13, num_m + 1)]
    kernels = thin + wide
    return torch.tensor(np.stack(kernels), dtype=torch.float32).expand(num_in_ch, -1, -1, -1).clone()


class ProxNet(nn.Module):
    """``num_res`` blocks ``relu(x + BN(conv(relu(BN(conv(x))))))``, then, with ``threshold``,
    ``relu(x - tau)`` with a learned ``tau`` per channel (initialised to 0.5): ``(B, C, H, W)`` in and out."""

    def __init__(self, channels, num_res, threshold=False):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels)) for _ in range(num_res))
        self.tau = nn.Parameter(torch.full((1, channels, 1, 1), 0.5)) if threshold else None

    def forward(self, x):
        for block in self.blocks:
            x = F.relu(x + block(x))
        return F.relu(x - self.tau) if self.tau is not None else x


@ARCH_REGISTRY.register()
class RCDNet(nn.Module):
    """RCDNet: ``(B, num_in_ch, H, W) -> (B, num_in_ch, H, W)``.

    Args:
        num_in_ch (int): image channels. Default: 3.
        num_stages (int): stages S, the first (initialisation) one included. Default: 17.
        num_m (int): rain maps (kernels). Default: 32.
        num_z (int): dual channels carried with the background. Default: 32.
        num_res (int): residual blocks per proximal network (the authors' ``T``). Default: 4.
        img_range (float): the value range the network works in. Default: 255.
    """

    def __init__(self, num_in_ch=3, num_stages=17, num_m=32, num_z=32, num_res=4, img_range=255.):
        super().__init__()
        if num_stages < 1:
            raise InvalidOption(f'RCDNet: num_stages must be at least 1, got {num_stages}')
        self.num_in_ch, self.img_range = num_in_ch, img_range
        kernels = rain_kernels(num_in_ch, num_m)
        self.kernel_init = nn.Parameter(kernels.clone())  # first stage
        self.kernel = nn.Parameter(kernels)  # shared by the later stages
        self.filter_z = nn.Parameter(torch.full((num_z, num_in_ch, 3, 3), 1 / 9))
        self.eta_b_init = nn.Parameter(torch.tensor([5.]))
        self.eta_m = nn.Parameter(torch.ones(num_stages - 1, 1))
        self.eta_b = nn.Parameter(torch.full((num_stages - 1, 1), 5.))
        self.tau = nn.Parameter(torch.ones(1))
        background = num_in_ch + num_z
        self.prox_b_init = ProxNet(background, num_res)
        self.prox_b = nn.ModuleList(ProxNet(background, num_res) for _ in range(num_stages))
        self.prox_m = nn.ModuleList(ProxNet(num_m, num_res, threshold=True) for _ in range(num_stages))
        self.prox_b_final = ProxNet(background, num_res)

    def _rain(self, maps, kernel):
        return F.conv2d(maps, kernel / 10, padding=KERNEL_SIZE // 2)

    def _background_step(self, stage, background, dual, rain, rainy, eta):
        """One proximal gradient step of the background: ``(B, B + Z channels)``."""
        step = background - eta / 10 * (background - (rainy - rain))
        out = self.prox_b[stage](torch.cat([step, dual], 1))
        return out[:, :self.num_in_ch], out[:, self.num_in_ch:], out

    def forward(self, x):
        rainy = x * self.img_range
        out = self.prox_b_init(torch.cat([rainy, F.conv2d(rainy, self.filter_z, padding=1)], 1))
        background, dual = out[:, :self.num_in_ch], out[:, self.num_in_ch:]
        rain_residual = F.relu(rainy - background - self.tau)
        maps = self.prox_m[0](F.conv_transpose2d(rain_residual, self.kernel_init / 10, padding=KERNEL_SIZE // 2))
        rain = self._rain(maps, self.kernel)
        background, dual, out = self._background_step(0, background, dual, rain=rain, rainy=rainy, eta=self.eta_b_init)
        for stage in range(1, len(self.prox_m)):
            error = rain - (rainy - background)
            gradient = F.conv_transpose2d(error, self.kernel / 10, padding=KERNEL_SIZE // 2)
            maps = self.prox_m[stage](maps - self.eta_m[stage - 1] / 10 * gradient)
            rain = self._rain(maps, self.kernel)
            background, dual, out = self._background_step(
                stage, background, dual, rain=rain, rainy=rainy, eta=self.eta_b[stage - 1])
        return self.prox_b_final(out)[:, :self.num_in_ch] / self.img_range
