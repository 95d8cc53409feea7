"""ONNX export (basicsr export) and the inference engines behind derain, compare and test: the same
results as PyTorch within 1 level on real photographs, with tiles and 16-bit input, one-line errors."""
import cv2
import numpy as np
import pytest
import re
import sys
import torch
from basicsr.archs import build_network
from basicsr.models import build_model

from mh2f_plugin.cli.main import main
from mh2f_plugin.errors import InvalidOption
from mh2f_plugin.models import engines, export, numerics
from mh2f_plugin.models.inference import pad_forward, size_multiple
from helpers import REALDATA, TINY_SR_X4, needs_realdata, photo, realdata_file, write

onnxruntime = pytest.importorskip('onnxruntime', reason="the onnx extra (pip install -e '.[onnx]') is not installed")
TINY = {'type': 'PReNet', 'num_feat': 8, 'num_iters': 2, 'num_res': 1}
ENGINES = [engines.ONNXRUNTIME, engines.OPENVINO]


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(TINY)).state_dict(), 'network_g': TINY}, tmp_path / 'w.pth')
    return tmp_path / 'w.pth'


def error_line(capsys, verb):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ': error: ' in line]
    assert len(lines) == 1 and lines[0].startswith(f'basicsr {verb}: error: ') and 'Traceback' not in err, err[-3000:]
    return lines[0]


def test_export_writes_a_checked_graph_of_any_size_with_padding_and_clamping(tmp_path, tiny_weights, capsys):
    assert main(['export', '--weights', str(tiny_weights), str(tmp_path / 'net.onnx')]) == 0
    assert re.search(r'ONNX Runtime on a photograph \(320x256\): at most [01] level', capsys.readouterr().out)
    session = onnxruntime.InferenceSession(str(tmp_path / 'net.onnx'), providers=['CPUExecutionProvider'])
    net = build_network(dict(TINY))
    net.load_state_dict(torch.load(tiny_weights)['params'])
    for height, width in ((37, 53), (64, 48)):
        image = torch.rand(1, 3, height, width) * 1.2  # out of range on purpose: the graph clamps
        ours = session.run(None, {'rainy': image.numpy()})[0]
        with torch.no_grad():
            expected = net.eval()(image).clamp(0, 1).numpy()
        assert ours.shape == (1, 3, height, width) and np.abs(ours - expected).max() < 1e-5
    assert main(['export', '--weights', str(tiny_weights), str(tmp_path / 'net.onnx')]) == 2
    assert 'net.onnx: already exists (pass --overwrite' in error_line(capsys, 'export')


@pytest.mark.parametrize('arch, flags, message', [
    ('SPANet:{num_feat: 8}', [], 'SPANet cannot be exported to ONNX: its IRNN runs a recurrence along every row'),
    ('NLEDN:{num_feat: 8, growth: 4}', [], 'NLEDN exports only at a fixed size (the regions of its non-local blocks '
     "depend on the image's size); pass --size WxH"),
    ('NLEDN:{num_feat: 8, growth: 4}', ['--size', '64'], '--size must be WxH in pixels'),
])
def test_networks_that_cannot_be_exported_are_refused_in_one_line(tmp_path, capsys, arch, flags, message):
    name = arch.split(':')[0]
    net = build_network({
        'type': name,
        **{
            k: v
            for k, v in (('num_feat', 8), ('growth', 4)) if k != 'growth' or name == 'NLEDN'
        }
    })
    torch.save({'params': net.state_dict()}, tmp_path / 'w.pth')
    assert main(['export', '--weights', str(tmp_path / 'w.pth'), '--arch', arch, str(tmp_path / 'n.onnx')] + flags) == 2
    assert message in error_line(capsys, 'export')
    assert not (tmp_path / 'n.onnx').exists()


def test_a_network_of_a_fixed_size_exports_at_that_size(tmp_path, capsys):
    net = build_network({'type': 'NLEDN', 'num_feat': 8, 'growth': 4})
    torch.save({'params': net.state_dict()}, tmp_path / 'w.pth')
    assert main([
        'export', '--weights',
        str(tmp_path / 'w.pth'), '--arch', 'NLEDN:{num_feat: 8, growth: 4}', '--size', '80x64',
        str(tmp_path / 'n.onnx')
    ]) == 0
    assert 'NLEDN for 80x64' in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / 'n.onnx'), providers=['CPUExecutionProvider'])
    assert [dim for dim in session.get_inputs()[0].shape] == [1, 3, 64, 80]


def test_export_of_a_network_that_changes_the_size_is_refused(tmp_path, capsys):
    sr = TINY_SR_X4
    torch.save({'params': build_network(dict(sr)).state_dict(), 'network_g': sr}, tmp_path / 'sr.pth')
    assert main(['export', '--weights', str(tmp_path / 'sr.pth'), str(tmp_path / 'sr.onnx')]) == 2
    assert re.search(r'sr.pth: RRDBNet returned a \d+x\d+ image', error_line(capsys, 'export'))


@pytest.mark.parametrize('module, extra', [('onnxscript', 'onnx'), ('onnxruntime', 'onnx'), ('openvino', 'openvino')])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, tiny_weights, capsys, monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    write(tmp_path / 'a.png', photo(0, (24, 32)))
    if module == 'onnxscript':
        assert main(['export', '--weights', str(tiny_weights), str(tmp_path / 'n.onnx')]) == 2
        line = error_line(capsys, 'export')
    else:
        engine = 'onnxruntime' if module == 'onnxruntime' else 'openvino'
        assert main([
            'derain',
            str(tmp_path / 'a.png'),
            str(tmp_path / 'o.png'), '--weights',
            str(tiny_weights), '--engine', engine
        ]) == 2
        line = error_line(capsys, 'derain')
    assert f"the {extra} extra: pip install 'mh2f_plugin[{extra}]'" in line


def derain(tmp_path, source, weights, engine, *flags):
    target = tmp_path / f'{engine}_{source.stem}.png'
    assert main(
        ['derain', str(source),
         str(target), '--weights',
         str(weights), '--engine', engine, '--amp', 'off'] + list(flags)) == 0
    return cv2.imread(str(target), cv2.IMREAD_UNCHANGED).astype(np.int64)


@pytest.mark.parametrize('engine', ENGINES)
def test_each_engine_derains_real_photos_within_one_level_of_torch(tmp_path, tiny_weights, capsys, engine):
    pytest.importorskip(engine, reason=f'the {engine} engine is not installed')
    write(tmp_path / 'street.png', photo(1, (70, 90)))
    write(tmp_path / 'deep.png', photo(2, (48, 60)).astype(np.uint16) * 257)  # 16-bit
    for name in ('street.png', 'deep.png'):
        reference = derain(tmp_path, tmp_path / name, tiny_weights, 'torch')
        ours = derain(tmp_path, tmp_path / name, tiny_weights, engine)
        assert ours.dtype == reference.dtype and np.abs(ours - reference).max() <= (257 if 'deep' in name else 1)
        tiled = derain(tmp_path, tmp_path / name, tiny_weights, engine, '--tile', '32', '--tile-overlap', '8',
                       '--overwrite')
        assert tiled.shape == reference.shape
    assert f'engine {engine}, f32 (set in the options)' in capsys.readouterr().err


def test_the_pixel_limit_holds_with_an_engine(tmp_path, tiny_weights, capsys, monkeypatch):
    monkeypatch.setenv('MH2F_MAX_IMAGE_PIXELS', '100')
    write(tmp_path / 'a.png', photo(0, (24, 32)))
    assert main([
        'derain',
        str(tmp_path / 'a.png'),
        str(tmp_path / 'o.png'), '--weights',
        str(tiny_weights), '--engine', 'onnxruntime'
    ]) == 2
    assert 'over the limit of 100' in error_line(capsys, 'derain')


def test_an_engine_exports_once_and_compiles_each_shape_once(tmp_path, monkeypatch):
    net = build_network(dict(TINY)).eval()
    exports = []
    real_export = export.export_onnx
    monkeypatch.setattr(export, 'export_onnx', lambda *a, **k: exports.append(a[1]) or real_export(*a, **k))
    engine = engines.build_engine(engines.ONNXRUNTIME, net, TINY)
    for shape in ((1, 3, 20, 24), (1, 3, 20, 24), (1, 3, 16, 40)):
        x = torch.rand(shape)
        with torch.no_grad():
            assert torch.allclose(engine(x), pad_forward(net, x, size_multiple(net)).clamp(0, 1), atol=1e-5)
    assert len(exports) == 1, 'one graph of dynamic size'
    assert sorted(engine.first_call_seconds) == [(1, 3, 16, 40), (1, 3, 20, 24)]
    widths = list(range(8, 8 + 4 * engines.KEPT_SHAPES, 4))
    for width in widths + [widths[0], 100]:
        engine(torch.rand(1, 3, 12, width))
    assert list(engine.compiled) == [(1, 3, 12, width) for width in widths[2:] + [widths[0], 100]], \
        'only the most recently used shapes stay compiled'
    again = engines.build_engine(engines.ONNXRUNTIME, net, TINY)
    again(torch.rand(1, 3, 20, 24))
    assert len(exports) == 1, 'the exported file is reused from the cache'
    other = build_network(dict(TINY, num_iters=3)).eval()
    other.load_state_dict(net.state_dict())
    engines.build_engine(engines.ONNXRUNTIME, other, dict(TINY, num_iters=3))(torch.rand(1, 3, 20, 24))
    assert len(exports) == 2, 'other options, another graph, although the weights are the same'


def test_test_runs_its_network_in_the_engine_its_options_name(tmp_path, tiny_weights):

    def model(engine):
        return build_model({
            'model_type': 'DerainModel',
            'num_gpu': 0,
            'is_train': False,
            'dist': False,
            'amp': None,
            'engine': engine,
            'network_g': dict(TINY),
            'path': {
                'pretrain_network_g': str(tiny_weights)
            }
        })

    image = torch.from_numpy(photo(3, (40, 56))[..., ::-1].transpose(2, 0, 1) / 255).float()[None]
    outputs = {}
    for engine in ('torch', 'onnxruntime'):
        runner = model(engine)
        runner.feed_data({'lq': image, 'lq_path': ['a.png']})
        runner.test()
        outputs[engine] = runner.output
    assert (outputs['torch'].clamp(0, 1) - outputs['onnxruntime']).abs().max() * 255 < 0.5


def test_auto_picks_a_measured_engine_where_the_cpu_computes_bf16_and_it_is_installed(monkeypatch):
    cpu = torch.device('cpu')
    monkeypatch.setattr(numerics, 'ENGINE_FASTER', {'bf16': {'PReNet': engines.OPENVINO}})
    monkeypatch.setattr(numerics, 'cpu_bf16', lambda: (True, 'a CPU with bf16 units'))
    assert numerics.resolve_engine('auto', 'PReNet', cpu, 'bf16')[:2] == (engines.OPENVINO, 'bf16')
    assert numerics.resolve_engine('auto', 'PReNet', cpu, None)[0] == engines.TORCH, 'measured in bf16 only'
    assert numerics.resolve_engine('auto', 'PRN', cpu, 'bf16')[0] == engines.TORCH
    monkeypatch.setattr(engines, 'available', lambda engine: False)
    engine, _, reason = numerics.resolve_engine('auto', 'PReNet', cpu, 'bf16')
    assert engine == engines.TORCH and 'not installed' in reason
    monkeypatch.setattr(numerics, 'cpu_bf16', lambda: (False, 'a CPU without'))
    assert numerics.resolve_engine('auto', 'PReNet', cpu, 'bf16')[0] == engines.TORCH
    assert numerics.resolve_engine('onnxruntime', 'PReNet', cpu, 'bf16')[1] == 'f32', 'ONNX Runtime: float32'
    with pytest.raises(InvalidOption, match='engine openvino runs on the CPU here, not on cuda'):
        numerics.resolve_engine('openvino', 'PReNet', torch.device('cuda'), None)


@needs_realdata
def test_an_exported_zoo_network_in_plain_onnx_runtime_equals_derain(tmp_path, monkeypatch):
    """The deployment path: basicsr export, then ONNX Runtime alone (no plugin), on a Rain100H image."""
    from mh2f_plugin.weights import zoo
    item = zoo.entry('prenet6-rain100h')
    (tmp_path / 'zoo' / item.relative_path).parent.mkdir(parents=True)
    (tmp_path / 'zoo' / item.relative_path).symlink_to(realdata_file(item))
    monkeypatch.setenv('MH2F_ZOO_DIR', str(tmp_path / 'zoo'))
    assert main(['export', '--weights', 'prenet6-rain100h', str(tmp_path / 'prenet.onnx')]) == 0
    rainy = cv2.imread(str(REALDATA / 'Rain100H' / 'inputcrop' / '1.png'))
    session = onnxruntime.InferenceSession(str(tmp_path / 'prenet.onnx'), providers=['CPUExecutionProvider'])
    array = np.ascontiguousarray(rainy[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    deployed = np.round(session.run(None, {'rainy': array})[0][0].transpose(1, 2, 0)[..., ::-1] * 255)
    assert main([
        'derain',
        str(REALDATA / 'Rain100H' / 'inputcrop' / '1.png'),
        str(tmp_path / 'ours.png'), '--weights', 'prenet6-rain100h', '--amp', 'off', '--engine', 'torch'
    ]) == 0
    assert np.abs(deployed - cv2.imread(str(tmp_path / 'ours.png'))).max() <= 1
