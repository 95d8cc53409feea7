"""Whole-image inference: padding, tiles equal to the untiled result, self-ensemble; DerainModel pieces."""
import pytest
import torch
import torch.nn.functional as F
from basicsr.models import build_model

from mh2f_plugin.archs.mh2f_arch import MH2FNet
from mh2f_plugin.archs.prenet_arch import PReNet
from mh2f_plugin.errors import CheckpointError, InvalidOption, NotARestorerError
from mh2f_plugin.models.derain_model import DerainModel, NonFiniteLossError
from mh2f_plugin.models.inference import (pad_forward, padded_size, restore, self_ensemble, size_multiple, tile_spans,
                                          tiled_forward)
from helpers import TINY_SR_X4


def tiny_net():
    torch.manual_seed(0)
    return MH2FNet(num_feat=8, num_blocks=2, dcr_layers=1, growth=4).eval()


@pytest.mark.parametrize('size, tile, overlap', [(100, 40, 16), (50, 40, 8), (41, 40, 8), (30, 40, 8)])
def test_tile_spans_cover_every_pixel_once_from_aligned_starts(size, tile, overlap):
    spans = tile_spans(size, tile, overlap, multiple=4)
    owned = [p for _, _, lo, hi in spans for p in range(lo, hi)]
    assert owned == list(range(size))
    for start, stop, lo, hi in spans:
        assert start % 4 == 0 and start <= lo < hi <= stop <= size
        assert stop - start <= max(tile + 3, size if len(spans) == 1 else 0)


@pytest.mark.parametrize(
    'net',
    [
        MH2FNet(num_feat=8, num_blocks=2, dcr_layers=1, growth=4),  # HADB over one output: no attention step
        PReNet(num_feat=8, num_iters=2, num_res=1, recurrent='none'),
    ])
def test_tiles_equal_the_whole_image_for_networks_without_global_pooling(net):
    torch.manual_seed(0)
    net.eval()
    img = torch.rand(1, 3, 150, 170)
    with torch.no_grad():
        whole = net(img)
        seen = []
        tiled = tiled_forward(
            net, img, tile=96, overlap=64, multiple=size_multiple(net), on_tile=lambda *done: seen.append(done))
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5
    rows, cols = (len(tile_spans(size, 96, 64, size_multiple(net))) for size in (150, 170))
    assert seen == [(done, rows * cols) for done in range(1, rows * cols + 1)] and rows * cols > 1


def test_tiled_default_mh2fnet_stays_within_the_stated_bound():
    """HADB's channel attention pools over each tile, so tiles of the default network (N = 8) never see
    the whole image's statistics: docs/inference.md states the bound measured here (5e-4 at tile 128,
    overlap 64 or 96, on a 256x256 photograph), and this test holds it to 1e-3."""
    import cv2
    from skimage import data as skdata
    torch.manual_seed(0)
    net = MH2FNet().eval()
    img = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        difference = (tiled_forward(net, x, 128, 64, multiple=4) - net(x)).abs().max().item()
    assert 1e-5 < difference < 1e-3


def test_tiles_without_enough_overlap_differ_so_the_test_above_is_meaningful():
    net = tiny_net()
    img = torch.rand(1, 3, 150, 170)
    with torch.no_grad():
        assert (tiled_forward(net, img, tile=48, overlap=0, multiple=4) - net(img)).abs().max() > 1e-3


def test_padding_for_networks_that_need_a_multiple():
    seen = []

    def net(x):
        seen.append(tuple(x.shape[-2:]))
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
        return x * 2

    img = torch.rand(1, 3, 37, 53)
    assert torch.equal(pad_forward(net, img, 8), img * 2)
    assert seen == [(40, 56)]


def test_self_ensemble_of_an_equivariant_map_is_the_map_and_of_others_averages():
    img = torch.rand(1, 3, 12, 16)
    assert torch.allclose(self_ensemble(lambda x: x * 3, img), img * 3)
    shifted = self_ensemble(lambda x: torch.roll(x, 1, dims=-1), img)
    assert not torch.allclose(shifted, torch.roll(img, 1, dims=-1))
    net = tiny_net()
    with torch.no_grad():
        out = restore(net, img, tile=8, tile_overlap=4, multiple=4, ensemble=True)
    assert out.shape == img.shape


def test_size_multiple_of_each_kind_of_network():
    from basicsr.archs.swinir_arch import SwinIR
    swinir = SwinIR(
        upscale=1, upsampler='', img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2],
        mlp_ratio=1).eval()
    assert size_multiple(tiny_net()) == 4 and size_multiple(swinir) == 4
    assert size_multiple(torch.nn.Conv2d(3, 3, 3)) == 1
    assert padded_size(37, 4) == 40 and padded_size(36, 4) == 36
    with torch.no_grad():
        assert restore(swinir, torch.rand(1, 3, 17, 23), multiple=size_multiple(swinir)).shape == (1, 3, 17, 23)


def model_options(tmp_path, **extra):
    return {
        'name': 'unit',
        'model_type': 'DerainModel',
        'num_gpu': 0,
        'is_train': True,
        'dist': False,
        'rank': 0,
        'network_g': {
            'type': 'MH2FNet',
            'num_feat': 8,
            'num_blocks': 2
        },
        'path': {
            'models': str(tmp_path / 'models'),
            'training_states': str(tmp_path / 'states')
        },
        'train': {
            'optim_g': {
                'type': 'Adam',
                'lr': 1e-3
            },
            'scheduler': {
                'type': 'MultiStepLR',
                'milestones': [10]
            },
            'pixel_opt': {
                'type': 'L1SSIMLoss'
            }
        },
        **extra,
    }


NUMERICS = [  # (options, autocast dtype seen, channels-last seen)
    (dict(amp=None, channels_last=False), torch.float32, False),
    (dict(amp='bf16', channels_last=False), torch.bfloat16, False),
    (dict(amp=None, channels_last=True), torch.float32, True),
    (dict(amp='bf16', channels_last=True), torch.bfloat16, True),
]


def test_a_network_whose_output_has_another_size_is_refused_in_test(tmp_path):
    """basicsr test, through DerainModel, cropped a x4 super-resolution output to the input's size."""
    options = model_options(tmp_path)
    options.update(is_train=False, network_g=dict(TINY_SR_X4))
    options.pop('train')
    model = build_model(options)
    model.feed_data({'lq': torch.rand(1, 3, 20, 24), 'lq_path': ['a.png']})
    with pytest.raises(NotARestorerError, match=r'RRDBNet returned a 96x80 image \(3 channels\) for a 24x20 image'):
        model.test()


def test_nan_loss_stops_training_with_the_iteration(tmp_path):
    model = build_model(model_options(tmp_path))
    assert isinstance(model, DerainModel)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    gt = torch.rand(2, 3, 16, 16)
    gt[0, 0, 0, 0] = float('nan')
    model.feed_data({'lq': torch.rand(2, 3, 16, 16), 'gt': gt})
    with pytest.raises(NonFiniteLossError, match=r'iteration 7: the training loss is not finite \(l_pix = nan\)'):
        model.optimize_parameters(7)
    for key, value in model.net_g.state_dict().items():
        assert torch.equal(value, before[key]), 'weights must not be updated with a NaN loss'


@pytest.mark.parametrize('extra', [options for options, _, _ in NUMERICS[:3]])
def test_training_step_lowers_the_loss(tmp_path, extra):
    model = build_model(model_options(tmp_path, **extra))
    torch.manual_seed(1)
    gt = torch.rand(4, 3, 16, 16)
    model.feed_data({'lq': (gt + 0.2 * torch.rand_like(gt)).clamp(0, 1), 'gt': gt})
    losses = []
    for it in range(1, 16):
        model.optimize_parameters(it)
        losses.append(model.log_dict['l_pix'])
    assert losses[-1] < losses[0]


@pytest.mark.parametrize('extra, dtype, channels_last', NUMERICS)
def test_amp_and_channels_last_take_effect_in_training_and_test(tmp_path, extra, dtype, channels_last):
    model = build_model(model_options(tmp_path, **extra))
    seen = []

    def record(module, args, out):
        seen.append((out.dtype, args[0].is_contiguous(memory_format=torch.channels_last),
                     module.weight.is_contiguous(memory_format=torch.channels_last)))

    model.net_g.conv_first.register_forward_hook(record)
    model.feed_data({'lq': torch.rand(2, 3, 16, 16), 'gt': torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    model.test()
    assert seen == [(dtype, channels_last, channels_last)] * 2
    assert model.output.dtype == torch.float32, 'metrics see float32 outputs'


def test_auto_numerics_resolve_as_documented_on_this_machine(tmp_path, monkeypatch):
    """docs/numerics.md and mh2f_plugin/models/numerics.py: bf16 on CPUs with a bf16 unit, channels-last per
    family on CPUs; on CUDA float32 from compute capability 8.0 on (measured faster), fp16 on 7.x."""
    from mh2f_plugin.models import numerics
    capabilities = torch.cpu.get_capabilities()
    native = capabilities.get('amx_bf16') or capabilities.get('avx512_bf16')
    model = build_model(model_options(tmp_path))  # amp and channels_last left out: auto
    assert model.amp_dtype == (torch.bfloat16 if native else None)
    assert model.channels_last is numerics.CHANNELS_LAST_FASTER['MH2FNet']
    monkeypatch.setattr(torch.cpu, 'get_capabilities', lambda: {
        **capabilities, 'amx_bf16': False,
        'avx512_bf16': False
    })
    assert numerics.resolve_amp('auto', torch.device('cpu'))[0] is None
    monkeypatch.setattr(torch.cpu, 'get_capabilities', lambda: {**capabilities, 'amx_bf16': True})
    assert numerics.resolve_amp('auto', torch.device('cpu'))[0] == 'bf16'
    assert build_model(model_options(tmp_path)).amp_dtype == torch.bfloat16
    assert build_model(model_options(tmp_path, amp=None, channels_last=False)).amp_dtype is None, 'explicit wins'
    assert numerics.resolve_channels_last('auto', 'SomeNewNet',
                                          torch.device('cpu')) == (False, 'auto: not measured for '
                                                                   'SomeNewNet')
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'A GPU')
    for capability, expected in (((9, 0), None), ((8, 0), None), ((7, 5), 'fp16'), ((6, 1), None)):
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None, c=capability: c)
        assert numerics.resolve_amp('auto', torch.device('cuda'))[0] == expected, capability
    assert numerics.resolve_amp('bf16', torch.device('cuda'))[0] == 'bf16', 'explicit wins'
    assert numerics.resolve_channels_last('auto', 'SPANet', torch.device('cuda'))[0] is True


def test_bf16_channels_last_weight_gradients_are_right_for_every_convolution_not_flagged():
    """On the CPU running the tests: ``bf16_channels_last_miscomputed`` misses no 3x3 convolution
    whose bfloat16 channels-last weight gradient is wrong (1 to 80 input channels, dilations 1 to 8)."""
    from mh2f_plugin.models.numerics import bf16_channels_last_miscomputed
    torch.manual_seed(0)
    wrong = []
    for in_channels in range(1, 81):
        for dilation in (1, 2, 3, 4, 8):
            conv = torch.nn.Conv2d(in_channels, 24, 3, 1, dilation, dilation=dilation, bias=False)
            if bf16_channels_last_miscomputed(conv) is not None:
                continue
            for batch, size in ((1, 32), (2, 48)):
                x = torch.rand(batch, in_channels, size, size)
                grad_out = torch.randn(batch, 24, size, size)
                expected = torch.nn.grad.conv2d_weight(x.double(), conv.weight.shape, grad_out.double(), 1, dilation,
                                                       dilation)
                weight = conv.weight.detach().bfloat16().to(memory_format=torch.channels_last).requires_grad_()
                out = F.conv2d(x.bfloat16().to(memory_format=torch.channels_last), weight, None, 1, dilation, dilation)
                out.backward(grad_out.bfloat16().to(memory_format=torch.channels_last))
                error = (weight.grad.double() - expected).norm() / expected.norm()
                if not error < 0.02:
                    wrong.append((in_channels, dilation, batch, size, error.item()))
    assert not wrong


def rescan_options(tmp_path, num_feat, **extra):
    options = model_options(tmp_path, amp='bf16', **extra)
    options['network_g'] = {'type': 'RESCAN', 'num_feat': num_feat, 'depth': 5, 'num_stages': 2}  # dilation 2
    return options


def test_training_keeps_bf16_off_the_channels_last_gradients_it_would_miscompute(tmp_path):
    assert build_model(rescan_options(tmp_path, 32)).channels_last, '32 input channels: computed right'
    model = build_model(rescan_options(tmp_path, 24))
    assert not model.channels_last
    assert not model.net_g.layers[2].conv_x.weight.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    gt = torch.rand(2, 3, 32, 32)
    model.feed_data({'lq': (gt + 0.2 * torch.rand_like(gt)).clamp(0, 1), 'gt': gt})
    for it in range(1, 4):
        model.optimize_parameters(it)
    assert all(torch.isfinite(p).all() for p in model.net_g.parameters())
    assert build_model(rescan_options(tmp_path, 24, channels_last=False)).channels_last is False
    with pytest.raises(
            InvalidOption,
            match=r'channels_last: true with amp bf16 cannot train here: RESCAN\.layers\.2'
            r'\.conv_x is a dilated convolution whose weight gradient PyTorch computes wrongly'):
        build_model(rescan_options(tmp_path, 24, channels_last=True))
    inference = rescan_options(tmp_path, 24, channels_last=True, is_train=False)
    assert build_model(inference).channels_last, 'the forward pass is right: test and derain keep channels-last'


def test_bad_amp_option(tmp_path):
    with pytest.raises(ValueError, match="amp must be one of auto, bf16, fp16"):
        build_model(model_options(tmp_path, amp='fp8'))


def test_a_failed_save_stops_training_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Disk full while the training state is written: BasicSR retries, then ignores the failure; the
    model must not install the half-written files and must stop with the cause."""
    import basicsr.models.base_model as base_model
    for folder in ('models', 'states'):
        (tmp_path / folder).mkdir()
    model = build_model(model_options(tmp_path))
    model.save(epoch=0, current_iter=5)
    real_save = torch.save

    def disk_full(obj, path, *args, **kwargs):
        if str(path).endswith('.state'):
            with open(path, 'wb') as f:
                f.write(b'PK\x03\x04 half a file')
            raise OSError(28, 'No space left on device')
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', disk_full)
    monkeypatch.setattr(base_model.time, 'sleep', lambda seconds: None)
    with pytest.raises(
            CheckpointError,
            match=r'could not save 10.state of iteration 10 \(Save training state error: '
            r'\[Errno 28\] No space left on device.*the previous checkpoint is still the latest'):
        model.save(epoch=0, current_iter=10)
    assert sorted(p.name for p in (tmp_path / 'models').iterdir()) == ['net_g_5.pth']
    assert sorted(p.name for p in (tmp_path / 'states').iterdir()) == ['5.state']
    assert set(torch.load(tmp_path / 'models' / 'net_g_5.pth')['params']) == set(model.net_g.state_dict())
    torch.load(tmp_path / 'states' / '5.state', weights_only=True)


def test_a_state_that_does_not_load_back_names_the_cause_not_the_disk(tmp_path, monkeypatch):
    """On torch 2.3 the safe loader refused the scheduler's Counter, and the message said 'free disk space'."""
    import mh2f_plugin.models.derain_model as derain_model
    for folder in ('models', 'states'):
        (tmp_path / folder).mkdir()
    model = build_model(model_options(tmp_path))
    real_load = torch.load

    def refuses_states(path, *args, **kwargs):
        if str(path).endswith('.state'):
            raise RuntimeError('Weights only load failed: Unsupported global: collections.Counter')
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(derain_model.torch, 'load', refuses_states)
    with pytest.raises(CheckpointError) as error:
        model.save(epoch=0, current_iter=3)
    assert '3.state does not load back: RuntimeError: Weights only load failed: Unsupported global' in str(error.value)
    assert 'free disk space' not in str(error.value) and '(fix that, then resume with --auto_resume)' in str(
        error.value)
