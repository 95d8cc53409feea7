"""SSIMLoss and L1SSIMLoss: agreement with reference SSIMs, gradients, autocast, edge cases."""
import numpy as np
import pytest
import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_ssim
from skimage.metrics import structural_similarity

from mh2f_plugin.losses.ssim_loss import L1SSIMLoss, SSIMLoss, ssim_map
from helpers import noisy, photo


def to_tensor(img):
    """uint8 HWC -> float64 (1, C, H, W) in [0, 1]."""
    return torch.from_numpy(img.astype(np.float64) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize('index', [0, 1, 2])
def test_agrees_with_basicsr_and_skimage_on_photographs(index):
    clean = photo(index, (96, 128))
    rainy = noisy(clean, seed=index, sigma=25)
    ours = ssim_map(to_tensor(clean), to_tensor(rainy)).mean().item()
    basicsr_ssim = calculate_ssim(clean, rainy, crop_border=0, input_order='HWC', test_y_channel=False)
    skimage_ssim = structural_similarity(
        clean / 255,
        rainy / 255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1)
    assert 0.2 < ours < 0.95
    assert abs(ours - basicsr_ssim) < 1e-4
    assert abs(ours - skimage_ssim) < 1e-4
    assert abs(SSIMLoss()(to_tensor(clean).float(), to_tensor(rainy).float()).item() - (1 - ours)) < 1e-4


def test_gradcheck_in_float64():
    torch.manual_seed(0)
    pred = torch.rand(1, 2, 12, 13, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 2, 12, 13, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: L1SSIMLoss()(p, target), (pred, ))
    assert torch.autograd.gradcheck(lambda p: SSIMLoss(reduction='none')(p, target), (pred, ))


def test_hybrid_is_l1_plus_lambda_times_ssim_loss():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    l1 = (pred - target).abs().mean()
    ssim = ssim_map(pred, target).mean()
    assert torch.allclose(L1SSIMLoss()(pred, target), l1 + 0.2 * (1 - ssim), atol=1e-6)
    assert torch.allclose(L1SSIMLoss(lambda_ssim=0.5)(pred, target), l1 + 0.5 * (1 - ssim), atol=1e-6)
    assert torch.allclose(L1SSIMLoss(loss_weight=3.0)(pred, target), 3 * (l1 + 0.2 * (1 - ssim)), atol=1e-6)
    assert torch.allclose(SSIMLoss(loss_weight=2.0)(pred, target), 2 * (1 - ssim), atol=1e-6)


def test_identical_images_give_exactly_zero():
    img = torch.rand(2, 3, 16, 16)
    assert L1SSIMLoss()(img, img.clone()).item() == 0.0
    assert SSIMLoss()(img, img.clone()).item() == 0.0


@pytest.mark.parametrize('pred_value, target_value', [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.3, 0.3), (0.5, 0.2)])
def test_constant_black_and_white_images_are_finite(pred_value, target_value):
    pred = torch.full((1, 3, 16, 16), pred_value, requires_grad=True)
    target = torch.full((1, 3, 16, 16), target_value)
    loss = L1SSIMLoss()(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_crops_smaller_than_the_window_are_refused():
    with pytest.raises(ValueError, match='8x10 pixels are smaller than the 11x11 window'):
        SSIMLoss()(torch.rand(1, 3, 8, 10), torch.rand(1, 3, 8, 10))
    assert torch.isfinite(SSIMLoss(window_size=7)(torch.rand(1, 3, 8, 10), torch.rand(1, 3, 8, 10)))


def test_bfloat16_autocast_stays_float32():
    torch.manual_seed(0)
    pred, target = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    reference = L1SSIMLoss()(pred, target)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        conv = torch.nn.Conv2d(3, 3, 1)
        out = conv(pred)
        assert out.dtype == torch.bfloat16
        loss = L1SSIMLoss()(pred, target)
        bf16_loss = L1SSIMLoss()(out, target)
        autocast_map = ssim_map(pred, target)
    assert autocast_map.dtype == torch.float32
    assert torch.allclose(autocast_map, ssim_map(pred, target), atol=1e-6), 'SSIM was computed in bfloat16'
    assert loss.dtype == torch.float32 and bf16_loss.dtype == torch.float32
    assert torch.isfinite(bf16_loss)
    assert abs(loss.item() - reference.item()) < 1e-3


def test_weights_and_reductions():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 20, 20), torch.rand(2, 3, 20, 20)
    ones = torch.ones(2, 1, 20, 20)
    assert torch.allclose(L1SSIMLoss()(pred, target, ones), L1SSIMLoss()(pred, target), atol=1e-6)
    assert torch.allclose(
        L1SSIMLoss(reduction='sum')(pred, target, 2 * ones), 2 * L1SSIMLoss(reduction='sum')(pred, target), atol=1e-4)
    # A weight that keeps only the first image is the loss of that image alone.
    first = torch.cat([torch.ones(1, 1, 20, 20), torch.zeros(1, 1, 20, 20)])
    assert torch.allclose(L1SSIMLoss()(pred, target, first), L1SSIMLoss()(pred[:1], target[:1]), atol=1e-6)
    assert SSIMLoss(reduction='none')(pred, target).shape == (2, 3, 10, 10)
    with pytest.raises(ValueError, match='Unsupported reduction mode: none'):
        L1SSIMLoss(reduction='none')
    with pytest.raises(ValueError, match='differ in shape'):
        SSIMLoss()(pred, target[..., :18])


def test_built_from_options_as_pixel_opt():
    loss = build_loss({'type': 'L1SSIMLoss', 'loss_weight': 1.0, 'lambda_ssim': 0.2, 'reduction': 'mean'})
    assert isinstance(loss, L1SSIMLoss) and loss.lambda_ssim == 0.2
    assert isinstance(build_loss({'type': 'SSIMLoss'}), SSIMLoss)
