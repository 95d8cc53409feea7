"""MH2F-Net: shapes, gradients, ablation options, padding, checkpoint loading, the optimised blocks."""
import pytest
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

import mh2f_plugin  # noqa: F401
from mh2f_plugin.archs.arch_util import concat_channels, pad_to_multiple
from mh2f_plugin.archs.mh2f_arch import HADB, MHEB, ConcatFusion, DCRBlock, DualAttention, MH2FNet

TINY = dict(num_feat=8, num_blocks=3)


def tiny(**options):
    torch.manual_seed(0)
    return MH2FNet(**{**TINY, **options})


def test_registered_in_basicsr():
    assert ARCH_REGISTRY.get('MH2FNet') is MH2FNet


@pytest.mark.parametrize('shape', [(1, 3, 37, 53), (2, 3, 16, 20), (3, 3, 5, 3), (1, 3, 1, 1)])
def test_output_has_the_input_shape(shape):
    assert tiny().eval()(torch.rand(shape)).shape == shape


def test_every_parameter_gets_a_finite_nonzero_gradient():
    net = tiny()
    out = net(torch.rand(2, 3, 20, 24))
    (out - torch.rand_like(out)).square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


ABLATIONS = [
    dict(num_blocks=2),
    dict(hierarchy_fusion='concat'),
    dict(final_fusion='add'),
    dict(final_fusion='concat'),
    dict(downsample='maxpool'),
    dict(downsample='avgpool'),
    dict(act='relu'),
    dict(dcr_layers=2, growth=4),
    dict(global_residual=True),
]


@pytest.mark.parametrize('options', ABLATIONS + [dict(num_in_ch=1, num_out_ch=1)])
def test_each_ablation_builds_and_runs(options):
    net = tiny(**options)
    channels = options.get('num_in_ch', 3)
    out = net(torch.rand(1, channels, 12, 16))
    assert out.shape == (1, options.get('num_out_ch', 3), 12, 16)
    assert torch.isfinite(out).all()


def _shapes(net):
    return {key: value.shape for key, value in net.state_dict().items()}


def test_every_ablation_changes_the_structure_or_the_function():
    """Any two settings (the default among them) differ in their parameters, or, with the same
    parameters loaded, in their output: an option that is ignored fails this."""
    x = torch.rand(1, 3, 12, 16)
    nets = [({}, tiny())] + [(options, tiny(**options)) for options in ABLATIONS]
    for index, (options_a, net_a) in enumerate(nets):
        for options_b, net_b in nets[index + 1:]:
            if _shapes(net_a) != _shapes(net_b):
                continue
            net_b.load_state_dict(net_a.state_dict())
            with torch.no_grad():
                assert not torch.allclose(net_a(x), net_b(x), atol=1e-6), (options_a, options_b)


@pytest.mark.parametrize('num_blocks', [2, 4, 6])
@pytest.mark.parametrize('hierarchy_fusion', ['hadb', 'concat'])
def test_hierarchy_fuses_the_first_n_minus_one_block_outputs(num_blocks, hierarchy_fusion):
    net = tiny(num_blocks=num_blocks, hierarchy_fusion=hierarchy_fusion)
    assert sum(isinstance(m, MHEB) for m in net.modules()) == num_blocks
    assert isinstance(net.hierarchy, HADB if hierarchy_fusion == 'hadb' else ConcatFusion)
    block_outputs, hierarchy_inputs = [], []
    for block in net.blocks:
        block.register_forward_hook(lambda module, args, out: block_outputs.append(out))
    net.hierarchy.register_forward_pre_hook(lambda module, args: hierarchy_inputs.extend(args[0]))
    net(torch.rand(1, 3, 8, 8))
    assert len(hierarchy_inputs) == num_blocks - 1
    assert all(a is b for a, b in zip(hierarchy_inputs, block_outputs[:-1]))


def test_each_image_of_a_batch_is_restored_as_if_alone():
    """No layer mixes the images of a batch (the attention pools per image), so batch size and
    neighbours never change a result."""
    net = tiny().eval()
    batch = torch.rand(3, 3, 21, 19)
    with torch.no_grad():
        together = net(batch)
        for index in range(3):
            assert torch.allclose(together[index], net(batch[index:index + 1])[0], atol=1e-5)


def test_sizes_that_are_multiples_of_four_are_not_padded():
    x = torch.rand(1, 3, 16, 12)
    assert pad_to_multiple(x, 4) is x
    assert pad_to_multiple(torch.rand(1, 3, 17, 12), 4).shape[-2:] == (20, 12)


def test_images_smaller_than_the_pad_are_replicate_padded():
    x = torch.rand(1, 3, 2, 9)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (8, 16)
    assert torch.equal(padded, F.pad(x, (0, 7, 0, 6), mode='replicate'))


def test_odd_sizes_are_reflect_padded_then_cropped_back():
    net = tiny().eval()
    x = torch.rand(1, 3, 17, 22)
    with torch.no_grad():
        expected = net(F.pad(x, (0, 2, 0, 3), mode='reflect'))[..., :17, :22]
        assert torch.allclose(net(x), expected, atol=1e-6)


def test_global_residual_adds_the_input():
    x = torch.rand(1, 3, 8, 8)
    plain, residual = tiny(), tiny(global_residual=True)
    residual.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert torch.allclose(residual(x), plain(x) + x, atol=1e-6)


@pytest.mark.parametrize('options, message', [
    (dict(final_fusion='sum'), "final_fusion must be one of 'rpf', 'add', 'concat', got 'sum'"),
    (dict(hierarchy_fusion='attention'), 'hierarchy_fusion must be one of'),
    (dict(downsample='stride'), 'downsample must be one of'),
    (dict(act='gelu'), 'act must be one of'),
    (dict(num_blocks=1), 'num_blocks must be at least 2'),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        tiny(**options)


@pytest.mark.parametrize('param_key', ['params', 'params_ema'])
def test_basicsr_loads_a_checkpoint_through_pretrain_network_g(tmp_path, param_key):
    from basicsr.models import build_model
    source = tiny()
    torch.save({param_key: source.state_dict()}, tmp_path / 'net.pth')
    opt = {
        'model_type': 'SRModel',
        'num_gpu': 0,
        'is_train': False,
        'dist': False,
        'network_g': {
            'type': 'MH2FNet',
            **TINY
        },
        'path': {
            'pretrain_network_g': str(tmp_path / 'net.pth'),
            'strict_load_g': True,
            'param_key_g': param_key
        },
    }
    model = build_model(opt)
    for key, value in source.state_dict().items():
        assert torch.equal(model.net_g.state_dict()[key], value), key


def reference_dcr_block(block, x):
    """The textbook dense block: every layer sees one concatenation of all earlier features."""
    features = [x]
    for layer in block.layers:
        features.append(block.act(layer(torch.cat(features, 1))))
    return x + block.fuse(torch.cat(features, 1))


def reference_dual_attention(attention, x, statistics_dtype=None):
    """The paper's dual attention, its channel statistics taken in ``statistics_dtype`` (default:
    the input's own)."""
    x = attention.channel(x)
    wide = x.to(statistics_dtype or x.dtype)
    pooled = torch.cat([wide.mean(1, keepdim=True), wide.amax(1, keepdim=True)], 1)
    return x * torch.sigmoid(attention.spatial(pooled.to(x.dtype)))


@pytest.mark.parametrize(
    'block, reference', [(DCRBlock(8, 3, 4), reference_dcr_block), (DualAttention(8, 2), reference_dual_attention)],
    ids=['DCRBlock', 'DualAttention'])
def test_optimised_blocks_match_their_reference_with_gradients(block, reference):
    block = block.double()
    x = torch.rand(2, 8, 12, 10, dtype=torch.float64)
    x[..., :3, :] = 0  # every channel tied for the max there: its gradient is shared among them
    x.requires_grad_()
    out = block(x)
    grad_out = torch.rand_like(out)
    grads = torch.autograd.grad(out, [x, *block.parameters()], grad_out)
    expected = reference(block, x)
    expected_grads = torch.autograd.grad(expected, [x, *block.parameters()], grad_out)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)


def test_concat_channels_returns_dense_gradients_equal_to_torch_cat():
    features = [
        torch.rand(2, channels, 6, 5, dtype=torch.bfloat16).to(memory_format=torch.channels_last).requires_grad_()
        for channels in (8, 4, 4)
    ]
    out = concat_channels(features)
    torch.testing.assert_close(out, torch.cat(features, 1), rtol=0, atol=0)
    grad_out = torch.rand_like(out)
    grads = torch.autograd.grad(out, features, grad_out)
    expected = torch.autograd.grad(torch.cat(features, 1), features, grad_out)
    for grad, expected_grad in zip(grads, expected):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
        assert grad.is_contiguous(memory_format=torch.channels_last)
        assert not expected_grad.is_contiguous(memory_format=torch.channels_last)  # what torch.cat gives


def trained_in_bf16(forward, x, module):
    """``forward(x)`` under bf16 autocast, then the gradients of a loss on it with respect to ``x``
    and ``module``'s parameters: ``(out, grad_x, *parameter_grads)``."""
    with torch.autocast('cpu', torch.bfloat16):
        out = forward(x)
    return (out, *torch.autograd.grad(out.float().square().sum(), [x, *module.parameters()]))


def test_dcr_block_trained_channels_last_in_bf16_equals_its_reference():
    torch.manual_seed(0)
    block = DCRBlock(16, 3, 16).to(memory_format=torch.channels_last)
    # bf16, as in the network, where every block input is the output of an autocast convolution
    x = torch.rand(2, 16, 12, 10, dtype=torch.bfloat16).to(memory_format=torch.channels_last).requires_grad_()
    out, grad_x, *grads = trained_in_bf16(block, x, block)
    expected_out, expected_grad_x, *expected_grads = trained_in_bf16(lambda x: reference_dcr_block(block, x), x, block)
    for value, expected in zip([out, *grads], [expected_out, *expected_grads]):
        torch.testing.assert_close(value, expected, rtol=0, atol=0)
    # The input's gradient sums its bf16 parts (the residual, the first layer, the concatenations)
    # in another order: equal up to bf16 rounding (its values reach 3.6; a misrouted part is off by ~1)
    torch.testing.assert_close(grad_x, expected_grad_x, rtol=1.6e-2, atol=2e-2)


def test_dual_attention_trained_channels_last_in_bf16_equals_its_reference():
    torch.manual_seed(0)
    attention = DualAttention(16, 4).to(memory_format=torch.channels_last)
    x = torch.rand(2, 16, 12, 10, dtype=torch.bfloat16)
    x[..., :3, :] = 0
    x = x.to(memory_format=torch.channels_last).requires_grad_()
    results = trained_in_bf16(attention, x, attention)
    expected = trained_in_bf16(lambda x: reference_dual_attention(attention, x, torch.float32), x, attention)
    for value, expected_value in zip(results, expected):
        torch.testing.assert_close(value, expected_value, rtol=0, atol=0)


def test_dual_attention_under_bf16_autocast_equals_its_reference():
    torch.manual_seed(0)
    attention = DualAttention(16, 4).to(memory_format=torch.channels_last)
    x = torch.rand(2, 16, 24, 20, dtype=torch.bfloat16).to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast('cpu', torch.bfloat16):
        out, expected = attention(x), reference_dual_attention(attention, x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_a_bf16_network_runs_without_autocast():
    net = tiny().bfloat16().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 16, 16, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
