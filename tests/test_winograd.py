"""NNPACK's Winograd 3x3 convolutions: same results as the direct ones, only where chosen."""
import pytest
import torch
from basicsr.models import build_model
from torch import nn

from mh2f_plugin.archs.prenet_arch import PReNet
from mh2f_plugin.models import numerics
from mh2f_plugin.models.winograd import available, eligible, use_winograd

needs_nnpack = pytest.mark.skipif(not available(), reason='this PyTorch has no NNPACK for this CPU')
CPU = torch.device('cpu')


def tiny_prenet():
    torch.manual_seed(0)
    return PReNet(num_feat=16, num_iters=2, num_res=2).eval()


def test_only_plain_3x3_convolutions_are_eligible():
    assert eligible(nn.Conv2d(8, 8, 3, padding=1))
    assert eligible(nn.Conv2d(8, 4, 3, padding=0, bias=False))
    for conv in (nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, stride=2,
                                               padding=1), nn.Conv2d(8, 8, 3, dilation=2), nn.Conv2d(8, 8, 3, groups=2),
                 nn.Conv2d(8, 8, 3, padding=1,
                           padding_mode='reflect'), nn.Conv2d(8, 8, 3, padding='same'), nn.ConvTranspose2d(8, 8, 3)):
        assert not eligible(conv), conv


@needs_nnpack
def test_winograd_inference_equals_the_direct_convolutions():
    net = tiny_prenet()
    rainy = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        direct = net(rainy)
    eligible_count = sum(map(eligible, net.modules()))
    assert use_winograd(net) == eligible_count > 0
    assert use_winograd(net) == 0, 'switching twice wraps nothing twice'
    with torch.inference_mode():
        fast = net(rainy)
        fast_channels_last = net(rainy.contiguous(memory_format=torch.channels_last))
    assert not torch.equal(fast, direct), 'the Winograd path was not taken'
    assert (fast - direct).abs().max() < 1e-5
    assert torch.equal(fast_channels_last, fast)


@needs_nnpack
def test_training_and_autocast_keep_the_direct_convolutions():
    net, reference = tiny_prenet(), tiny_prenet()
    use_winograd(net)
    rainy = torch.rand(1, 3, 24, 24)
    assert torch.equal(net(rainy), reference(rainy)), 'with gradients on'
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.equal(net(rainy), reference(rainy)), 'under bf16 autocast'


@pytest.fixture
def avx2(monkeypatch):
    monkeypatch.setattr(numerics.winograd, 'available', lambda: True)
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX2')


def test_auto_chooses_winograd_for_the_measured_families_on_avx2_cpus(avx2, monkeypatch):
    assert numerics.resolve_winograd('auto', 'PReNet', CPU, None)[0] is True
    assert numerics.resolve_winograd('auto', 'BRN', CPU, None)[0] is True
    assert numerics.resolve_winograd('auto', 'MH2FNet', CPU, None) == (False, 'auto: not faster for MH2FNet')
    assert numerics.resolve_winograd('auto', 'NewNet', CPU, None) == (False, 'auto: not measured for NewNet')
    assert numerics.resolve_winograd('auto', 'PReNet', CPU, 'bf16')[0] is False
    assert numerics.resolve_winograd(True, 'PReNet', torch.device('cuda'), None)[0] is False
    assert numerics.resolve_channels_last('auto', 'PReNet', CPU, winograd_on=True)[0] is False
    assert numerics.resolve_channels_last(True, 'PReNet', CPU, winograd_on=True)[0] is True, 'explicit wins'
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX512')
    assert numerics.resolve_winograd('auto', 'PReNet', CPU,
                                     None) == (False, 'auto: measured on AVX2 CPUs only, and this one runs AVX512')
    assert numerics.resolve_winograd(True, 'PReNet', CPU, None)[0] is True, 'explicit wins'
    monkeypatch.setattr(numerics.winograd, 'available', lambda: False)
    assert numerics.resolve_winograd(True, 'PReNet', CPU, None)[0] is False


def prenet_test_options(tmp_path, **extra):
    return {
        'name': 'unit',
        'model_type': 'DerainModel',
        'num_gpu': 0,
        'is_train': False,
        'dist': False,
        'rank': 0,
        'amp': None,
        'engine': 'torch',  # Winograd is PyTorch's; an engine runs its own convolutions
        'network_g': {
            'type': 'PReNet',
            'num_feat': 8,
            'num_iters': 2,
            'num_res': 1
        },
        'path': {
            'pretrain_network_g': None,
            'results_root': str(tmp_path)
        },
        'val': {
            'metrics': None
        },
        **extra,
    }


def convolutions_switched(model):
    return sum(type(m.__dict__.get('_conv_forward')).__name__ == '_WinogradForward' for m in model.net_g.modules())


@needs_nnpack
def test_the_test_model_switches_as_resolved(tmp_path, avx2):
    model = build_model(prenet_test_options(tmp_path))
    assert model.winograd and not model.channels_last
    assert convolutions_switched(model) == sum(map(eligible, model.net_g.modules()))
    assert convolutions_switched(build_model(prenet_test_options(tmp_path, winograd=False))) == 0
    assert convolutions_switched(build_model(prenet_test_options(tmp_path, amp='bf16'))) == 0


@needs_nnpack
def test_multiply_accumulates_are_counted_through_winograd_convolutions():
    from mh2f_plugin.utils.measure import macs
    net = tiny_prenet()
    expected = macs(net, (3, 24, 32))
    use_winograd(net)
    with torch.no_grad():
        assert macs(net, (3, 24, 32)) == expected > 0
