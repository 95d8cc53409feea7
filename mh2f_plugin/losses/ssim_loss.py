"""SSIM (Wang et al. 2004) as a loss, and MH2F-Net's hybrid ``L1 + lambda * (1 - SSIM)``.

SSIM here is the standard one: an 11x11 Gaussian window with sigma 1.5, applied as two 1-D
convolutions grouped over channels, K1 = 0.01, K2 = 0.03, population (weighted) covariances,
computed at the 'valid' window positions only (as ``skimage.metrics.structural_similarity`` and
BasicSR's ``calculate_ssim`` do) and averaged over channels and positions. Images are
``(B, C, H, W)`` in ``[0, data_range]`` with ``H, W >= window_size``; the computation runs in
float32 (float64 stays float64) even under fp16/bf16 autocast.
"""
import torch
import torch.nn.functional as F
from basicsr.losses.basic_loss import l1_loss
from basicsr.losses.loss_util import weight_reduce_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from mh2f_plugin.errors import InvalidOption

REDUCTIONS = ('none', 'mean', 'sum')


def gaussian_window(window_size=11, sigma=1.5, dtype=torch.float32, device=None):
    """The normalised 1-D Gaussian, shape ``(window_size,)``."""
    coords = torch.arange(window_size, dtype=dtype, device=device) - (window_size - 1) / 2
    window = torch.exp(-coords.square() / (2 * sigma**2))
    return window / window.sum()


def ssim_map(img1, img2, window_size=11, sigma=1.5, data_range=1.0, k1=0.01, k2=0.03):
    """SSIM at every valid window position: ``(B, C, H, W)`` x2 -> ``(B, C, H-ws+1, W-ws+1)``."""
    if img1.shape != img2.shape:
        raise ValueError(f'SSIM: images differ in shape: {tuple(img1.shape)} and {tuple(img2.shape)}')
    if img1.dim() != 4:
        raise ValueError(f'SSIM: expected (B, C, H, W) images, got shape {tuple(img1.shape)}')
    height, width = img1.shape[-2:]
    if min(height, width) < window_size:
        raise InvalidOption(f'SSIM: images of {height}x{width} pixels are smaller than the {window_size}x{window_size} '
                            'window; use larger crops or a smaller window_size')
    dtype = torch.promote_types(img1.dtype, torch.float32)
    with torch.autocast(device_type=img1.device.type, enabled=False):
        x, y = img1.to(dtype), img2.to(dtype)
        channels = x.shape[1]
        stats = torch.cat([x, y, x * x, y * y, x * y], 1)
        window = gaussian_window(window_size, sigma, dtype, device=x.device)
        groups = stats.shape[1]
        stats = F.conv2d(stats, window.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
        stats = F.conv2d(stats, window.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
        mu_x, mu_y, xx, yy, xy = stats.split(channels, 1)
        var_x, var_y, cov = xx - mu_x.square(), yy - mu_y.square(), xy - mu_x * mu_y
        c1, c2 = (k1 * data_range)**2, (k2 * data_range)**2
        return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))


def _check_reduction(reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise InvalidOption(f'Unsupported reduction mode: {reduction}. Supported ones are: {allowed}')
    return reduction


@LOSS_REGISTRY.register()
class SSIMLoss(nn.Module):
    """``loss_weight * (1 - SSIM(pred, target))``.

    Args:
        loss_weight (float): scale of the loss. Default: 1.0.
        reduction (str): ``'mean'`` (SSIM averaged over channels and valid positions), ``'sum'``,
            or ``'none'`` (the element-wise ``1 - SSIM`` map, ``(B, C, H-10, W-10)``).
        window_size (int), sigma (float), data_range (float): the SSIM window and the image range.

    ``forward(pred, target, weight=None)``: ``weight`` is an element-wise map ``(B, 1 or C, H, W)``
    over the images; it weights the SSIM map at each window's centre.
    """

    def __init__(self, loss_weight=1.0, reduction='mean', window_size=11, sigma=1.5, data_range=1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = _check_reduction(reduction)
        self.window_size, self.sigma, self.data_range = window_size, sigma, data_range

    def forward(self, pred, target, weight=None, **kwargs):
        dissimilarity = 1 - ssim_map(pred, target, self.window_size, sigma=self.sigma, data_range=self.data_range)
        if weight is not None:
            border = (self.window_size - 1) // 2
            height, width = weight.shape[-2:]
            weight = weight[..., border:height - border, border:width - border].to(dissimilarity.dtype)
        return self.loss_weight * weight_reduce_loss(dissimilarity, weight, self.reduction)


@LOSS_REGISTRY.register()
class L1SSIMLoss(nn.Module):
    """MH2F-Net's loss: ``loss_weight * (L1 + lambda_ssim * (1 - SSIM))``.

    Args:
        loss_weight (float): scale of the whole loss. Default: 1.0.
        lambda_ssim (float): the paper's lambda, the weight of the SSIM term. Default: 0.2.
        reduction (str): ``'mean'`` or ``'sum'`` (applied to both terms; the two element-wise
            maps differ in size, so there is no ``'none'``).
        window_size (int), sigma (float), data_range (float): as in ``SSIMLoss``.

    ``forward(pred, target, weight=None)``: ``weight`` ``(B, 1 or C, H, W)`` weights both terms.
    Both terms are computed in float32 under autocast.
    """

    def __init__(self, loss_weight=1.0, lambda_ssim=0.2, reduction='mean', window_size=11, sigma=1.5, data_range=1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.lambda_ssim = lambda_ssim
        self.reduction = _check_reduction(reduction, ('mean', 'sum'))
        self.ssim = SSIMLoss(1.0, reduction, window_size, sigma=sigma, data_range=data_range)

    def forward(self, pred, target, weight=None, **kwargs):
        dtype = torch.promote_types(pred.dtype, torch.float32)
        pred, target = pred.to(dtype), target.to(dtype)
        l1 = l1_loss(pred, target, weight, reduction=self.reduction)
        return self.loss_weight * (l1 + self.lambda_ssim * self.ssim(pred, target, weight))
