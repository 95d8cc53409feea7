"""The comparison networks added with their authors' weights: MARD-Net, JORDER-E, NLEDN, UMRL, DDN, VRGNet.
Parameter counts equal the authors' networks' (less what their forward never uses); shapes, sizes,
gradients and the options of their test procedures."""
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.archs.nledn_arch import NLEDN, supported_side
from mh2f_plugin.archs.umrl_arch import UMRL
from mh2f_plugin.errors import InvalidOption


def count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    'name, expected',
    [
        ('MARDNet', 723_811),  # cxtalk/MARD-Net Net()
        ('JORDERE', 406_784),  # testing_practical JORDER_E
        ('NLEDN', 1_005_379),
        ('UMRL', 984_356 - 40 - 2 - 2_320),  # less batchnorm20, batchnorm1, conf_res.conv_refin (never applied)
        ('VRGNet', 170_697 - 867),  # less the log-variance half of convfinal
        ('DDN', 57_369),
        ('SIRR', 57_369),
    ])
def test_published_defaults_have_the_authors_parameter_counts(name, expected):
    assert count(ARCH_REGISTRY.get(name)()) == expected


SMALL = {
    'MARDNet': dict(num_feat=8, num_blocks=2),
    'JORDERE': dict(num_feat=8, num_blocks=1),
    'NLEDN': dict(num_feat=8, growth=4),
    'UMRL': dict(num_feat=8),
    'VRGNet': dict(num_feat=8, num_iters=2, num_res=1),
    'DDN': dict(num_feat=4, num_blocks=2),
}


@pytest.mark.parametrize('name', sorted(SMALL))
def test_any_size_in_the_input_shape_out_and_every_parameter_trains(name):
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get(name)(**SMALL[name])
    x = torch.rand(2, 3, 37, 29)
    out = net(x)
    assert out.shape == x.shape
    (out - torch.rand_like(out)).square().mean().backward()
    for key, param in net.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, key


def test_nledn_sides_are_those_its_regions_can_pool():
    """The authors' network fails on sides where a region or the 1/8 map is under 2 pixels (measured
    with their code: 8-15, 19-22, 25-27, 29, 36, 43, 50, 57); here those are padded."""
    failing = [size for size in range(8, 70) if not supported_side(size)]
    assert failing == [8, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 22, 25, 26, 27, 29, 36, 43, 50, 57]
    assert all(supported_side(size) for size in range(58, 2000))
    net = NLEDN(num_feat=8, growth=4).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 9, 36)).shape == (1, 3, 9, 36)


def test_umrl_normalises_each_image_by_its_own_statistics_and_stretches_each_output():
    torch.manual_seed(0)
    net = UMRL(num_feat=8).eval()
    a, b = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48) * 0.5
    with torch.no_grad():
        alone, together = net(a), net(torch.cat([a, b]))
        assert torch.allclose(alone, together[:1], atol=1e-6), 'no statistics shared across a batch'
        assert alone.amin() == 0 and alone.amax() == pytest.approx(1)
        running = UMRL(num_feat=8, norm_statistics='running', output_range='affine').eval()
        running.load_state_dict(net.state_dict())
        assert not torch.allclose(running(a), alone, atol=1e-3)
    with pytest.raises(InvalidOption, match="UMRL: output_range must be one of 'stretch', 'affine'"):
        UMRL(output_range='clip')


def test_jordere_runs_in_the_range_it_was_trained_on():
    """Its modulation multiplies features, so the network is not scale-equivariant: 0..255 matters."""
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get('JORDERE')(num_feat=8, num_blocks=1).eval()
    unit = ARCH_REGISTRY.get('JORDERE')(num_feat=8, num_blocks=1, rgb_range=1.).eval()
    unit.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(net(x), unit(x), atol=1e-3)


def test_vrgnet_uses_its_own_last_convolution_only_in_the_last_stage():
    torch.manual_seed(0)
    vrg = ARCH_REGISTRY.get('VRGNet')(num_feat=8, num_iters=2, num_res=1).eval()
    prenet = ARCH_REGISTRY.get('PReNet')(num_feat=8, num_iters=2, num_res=1).eval()
    prenet.load_state_dict({k: v for k, v in vrg.state_dict().items() if not k.startswith('last_tail.')})
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert not torch.allclose(vrg(x), prenet(x))
        vrg.last_tail.load_state_dict(vrg.tail.state_dict())
        assert torch.allclose(vrg(x), prenet(x))


PLUGIN_ARCHS = sorted(name for name, cls in ARCH_REGISTRY if cls.__module__.startswith('mh2f_plugin'))


@pytest.mark.parametrize('name', PLUGIN_ARCHS)
def test_every_network_of_the_plugin_counts_its_operations(name):
    """``compare`` and the benchmarks count GMACs by tracing (mmengine); NLEDN's unpooling once
    failed under tracing."""
    from mh2f_plugin.utils.measure import macs
    with torch.no_grad():
        assert macs(ARCH_REGISTRY.get(name)().eval(), (3, 64, 80)) > 0


TODAYS = {
    'Restormer': (dict(num_feat=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1), 'params', ''),
    'DRSformer': (dict(num_feat=8, num_blocks=[1, 1, 1, 1]), 'params', ''),
    'DRSformer_no_mefc': (dict(num_feat=8, num_blocks=[1, 1, 1, 1], mefc=False), 'params', ''),
    'MPRNet': (dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2), 'state_dict', 'module.'),
    'NeRDRain': (dict(dim=8, num_blocks=[1, 1, 1], win_size=32), 'state_dict', ''),
}


@pytest.mark.parametrize('label', sorted(TODAYS))
def test_todays_comparators_load_from_their_authors_layout_without_arch(tmp_path, label):
    """Their authors' files as they publish them: BasicSR's ``{'params'}`` without ``network_g``
    (Restormer, DRSformer, which today's loader read as MH2F-Net), ``{'state_dict'}`` with
    DataParallel's ``module.`` (MPRNet) or without (NeRD-Rain). The network and its settings come
    from the keys; the topology was checked against the authors' code (docs/weights.md)."""
    from mh2f_plugin.weights.loader import load_network
    options, container, prefix = TODAYS[label]
    name = label.split('_')[0]
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get(name)(**options).eval()
    torch.save({container: {prefix + key: value for key, value in net.state_dict().items()}}, tmp_path / 'w.pth')
    test_time = {'win_size': options['win_size']} if 'win_size' in options else None  # no file can say it
    loaded, network_opt = load_network(str(tmp_path / 'w.pth'), test_time)
    found = {key: list(value) if isinstance(value, tuple) else value for key, value in network_opt.items()}
    assert network_opt['type'] == name and options.items() <= found.items()
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), net(x))
