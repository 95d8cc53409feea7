"""The PReNet and RESCAN baselines, and basicsr compare."""
import csv
import cv2
import numpy as np
import pytest
import time
import torch
from basicsr.metrics import calculate_psnr
from basicsr.utils import img2tensor, tensor2img
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.archs.prenet_arch import PReNet
from mh2f_plugin.archs.rescan_arch import RESCAN
from mh2f_plugin.cli.main import main
from mh2f_plugin.data.image_io import read_image
from mh2f_plugin.models.scoring import evaluate
from helpers import REPO, TINY_SR_X4, make_input_target, photo, write


def count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    'arch, expected',
    [
        # PReNet: conv0 6->32 (1,760) + LSTM gates 64->4x32 (73,856) + 5 res blocks (92,480) + conv 32->3 (867)
        (PReNet, 168_963),
        # RESCAN: GRU 3->24 (x: 2,016; h for z, r: 10,416; h for n: 5,208; SE: 318), 4 GRUs 24->24 (x: 15,624 and
        # the same 15,942 each), decoder 3x3 (5,208) + SE (318) + 1x1 (75): about 0.15 M
        (RESCAN, 17_958 + 4 * 31_566 + 5_601),
    ])
def test_published_defaults_and_parameter_counts(arch, expected):
    assert ARCH_REGISTRY.get(arch.__name__) is arch
    assert count(arch()) == expected


@pytest.mark.parametrize('net', [PReNet(num_feat=8, num_iters=2, num_res=1), RESCAN(num_feat=8, depth=4, num_stages=2)])
def test_baselines_keep_shape_and_train(net):
    x = torch.rand(2, 3, 13, 17)
    out = net(x)
    assert out.shape == x.shape
    (out - torch.rand_like(out)).square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_stages_matter():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 12)
    one, two = PReNet(num_feat=8, num_iters=1), PReNet(num_feat=8, num_iters=2)
    two.load_state_dict(one.state_dict())
    assert not torch.allclose(one(x), two(x))
    with pytest.raises(ValueError, match='depth must be at least 3'):
        RESCAN(depth=2)


TINY = ['--arch', 'MH2FNet:{num_feat: 8, num_blocks: 2}', '--arch', 'PReNet:{num_feat: 8, num_iters: 2, num_res: 1}']


def read_table(out):
    with open(out / 'comparison.csv', newline='') as f:
        return list(csv.DictReader(f))


def test_compare_untrained_networks_gives_complexity_and_speed(tmp_path, capsys):
    make_input_target(tmp_path / 'data')
    assert main(['compare'] + TINY +
                ['--data', str(tmp_path / 'data'), '--size', '64x48', '--out',
                 str(tmp_path / 'out')]) == 0
    rainy, *rows = read_table(tmp_path / 'out')
    assert [r['network'] for r in rows] == ['MH2FNet', 'PReNet']
    assert set(
        rows[0]) == {'network', 'parameters (M)', 'GMACs (64x48)', 'ms / image', 'peak MB / image', 'PSNR', 'SSIM'}
    assert float(rows[0]['parameters (M)']) == pytest.approx(
        count(ARCH_REGISTRY.get('MH2FNet')(num_feat=8, num_blocks=2)) / 1e6, abs=1e-3)
    assert all(float(r['GMACs (64x48)']) > 0 and float(r['ms / image']) > 0 for r in rows)
    assert all(float(r['peak MB / image']) > 0 for r in rows), 'each network is measured in a fresh process'
    assert rows[0]['PSNR'] == ''  # no weights, no training: no quality numbers
    assert not list((tmp_path / 'out').glob('figure_*.png')), 'no figure without quality numbers'
    assert '| MH2FNet |' in capsys.readouterr().out
    pairs = [(cv2.imread(str(p)), cv2.imread(str(tmp_path / 'data' / 'target' / (p.stem + '.bmp'))))
             for p in sorted((tmp_path / 'data' / 'input').glob('*.png'))]
    expected = np.mean([calculate_psnr(lq, gt, 0, test_y_channel=True) for lq, gt in pairs])
    assert rainy['network'] == 'rainy input' and float(rainy['PSNR']) == pytest.approx(expected, abs=0.01)


def test_compare_after_a_shared_short_training(tmp_path, monkeypatch):
    make_input_target(tmp_path / 'data')
    (tmp_path / 'datasets').symlink_to(REPO / 'datasets')
    monkeypatch.chdir(tmp_path)
    recipe = str(REPO / 'options/train_mh2f_demo.yml')
    assert main(
        ['compare'] + TINY +
        ['--data', 'datasets/demo/val', '--recipe', recipe, '--train-iters', '2', '--size', '32x32', '--out', 'out']
    ) == 0
    rows = read_table(tmp_path / 'out')[1:]
    assert len(rows) == 2
    for row in rows:
        assert 5 < float(row['PSNR']) < 60 and 0 < float(row['SSIM']) <= 1
    assert (tmp_path / 'out' / 'psnr_vs_gmacs.png').stat().st_size > 1000
    figures = sorted(p.name for p in (tmp_path / 'out').glob('figure_*.png'))
    assert figures == ['figure_camera_02.png', 'figure_coffee_00.png'], 'two images spread over the four by default'
    for label in ('MH2FNet', 'PReNet'):
        saved = sorted(p.name for p in (tmp_path / 'out' / 'outputs' / label).iterdir())
        assert saved == ['camera_02.png', 'coffee_00.png']
    assert (tmp_path / 'experiments' / 'compare_PReNet' / 'models' / 'net_g_latest.pth').is_file()


class ColdStart(torch.nn.Module):
    """Identity whose first call takes half a second, as a first forward's set-up can."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 1:
            time.sleep(0.5)
        return x


def test_one_time_set_up_is_not_charged_to_the_time_per_image():
    rainy = [torch.rand(3, 16, 16) for _ in range(2)]
    images = [{'lq': lq, 'gt': (lq + 0.05 * torch.randn_like(lq)).clamp(0, 1)} for lq in rainy]
    ms, peak, psnr, ssim = evaluate(ColdStart(), images, torch.device('cpu'), 1, with_metrics=True)
    assert ms < 250
    assert 0 < psnr < 60 and 0 < ssim < 1


def test_unknown_arch_lists_the_registered_ones(tmp_path, capsys):
    make_input_target(tmp_path / 'data')
    assert main(['compare', '--arch', 'NoSuchNet', '--data', str(tmp_path / 'data')]) == 2
    err = capsys.readouterr().err
    assert "unknown arch 'NoSuchNet'. Registered archs:" in err
    assert 'MH2FNet' in err and 'PReNet' in err and 'SwinIR' in err


def test_stock_basicsr_arch_in_a_comparison(tmp_path):
    make_input_target(tmp_path / 'data')
    assert main([
        'compare', '--arch', 'RIDNet:{in_channels: 3, mid_channels: 16, out_channels: 3}', '--arch',
        'SwinIR:{upscale: 1, upsampler: "", img_size: 16, window_size: 4, embed_dim: 12, depths: [1], '
        'num_heads: [2], mlp_ratio: 1}', '--data',
        str(tmp_path / 'data'), '--size', '37x29', '--out',
        str(tmp_path / 'out')
    ]) == 0
    assert [r['network'] for r in read_table(tmp_path / 'out')] == ['rainy input', 'RIDNet', 'SwinIR']


def test_weights_alone_make_a_row_and_the_figure_shows_every_method(tmp_path, capsys):
    import official_layouts
    make_input_target(tmp_path / 'data')
    torch.manual_seed(0)
    torch.save(official_layouts.prenet(recurrent='none', shared=True), tmp_path / 'prn_r.pth')
    assert main([
        'compare', '--weights', f'PRN_r official={tmp_path / "prn_r.pth"}', '--data',
        str(tmp_path / 'data'), '--size', '32x32', '--figure', 'b_2', '--out',
        str(tmp_path / 'out')
    ]) == 0
    rainy, row = read_table(tmp_path / 'out')
    assert row['network'] == 'PRN_r official' and row['PSNR'] != ''
    assert float(row['parameters (M)']) == pytest.approx(count(ARCH_REGISTRY.get('PRN_r')(num_feat=8)) / 1e6, abs=1e-3)
    figure = cv2.imread(str(tmp_path / 'out' / 'figure_b_2.png'))
    assert figure.shape[1] > figure.shape[0], 'rainy | method | ground truth side by side, zooms below'
    assert main([
        'compare', '--arch', 'PRN', '--data',
        str(tmp_path / 'data'), '--figure', 'nope', '--out',
        str(tmp_path / 'out2')
    ]) == 2
    assert "--figure: no image named nope in" in capsys.readouterr().err


@pytest.mark.parametrize('command', ['compare', 'derain'])
def test_a_network_whose_output_has_another_size_is_refused_naming_both(tmp_path, capsys, command):
    """compare scored a x4 super-resolution RRDBNet on 64x64 pairs (PSNR 7.00) and exited 0."""
    from basicsr.archs import build_network
    torch.save({'params': build_network(dict(TINY_SR_X4)).state_dict(), 'network_g': TINY_SR_X4}, tmp_path / 'sr.pth')
    for folder in ('input', 'target'):
        write(tmp_path / 'data' / folder / 'a.png', photo(0, (64, 64)))
    flags = {
        'compare': ['--weights', f'SR={tmp_path / "sr.pth"}', '--data', tmp_path / 'data', '--out', tmp_path / 'out'],
        'derain': [tmp_path / 'data' / 'input' / 'a.png', tmp_path / 'out' / 'a.png', '--weights', tmp_path / 'sr.pth']
    }[command]
    assert main([command] + [str(f) for f in flags]) == 2
    err = capsys.readouterr().err
    assert 'RRDBNet returned a 256x256 image (3 channels) for a 64x64 image (3 channels)' in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f'basicsr {command}: error: ') and 'Traceback' not in err
    assert not list((tmp_path / 'out').rglob('*.png')) and not (tmp_path / 'out' / 'comparison.md').exists()


def test_rainiest_crop_finds_the_rain():
    from mh2f_plugin.utils.figure import rainiest_crop
    clean = np.full((60, 90, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[30:50, 60:80] = 250
    top, left, size = rainiest_crop(rainy, clean)
    assert size == 18 and 30 <= top <= 50 - size and 60 <= left <= 80 - size  # inside the rainy block


def test_a_row_labelled_dot_dot_writes_inside_outputs(tmp_path):
    """A row labelled '..' wrote its images into --out itself."""
    import official_layouts
    make_input_target(tmp_path / 'data')
    torch.save(official_layouts.prenet(recurrent='none', shared=True), tmp_path / 'prn_r.pth')
    out = tmp_path / 'out'
    assert main([
        'compare', '--weights', f'..={tmp_path / "prn_r.pth"}', '--data',
        str(tmp_path / 'data'), '--size', '32x32', '--figure', 'b_2', '--out',
        str(out)
    ]) == 0
    assert (out / 'outputs' / '_.' / 'b_2.png').is_file() and not (out / 'b_2.png').exists()
    assert (out / 'figure_b_2.png').is_file()


@pytest.mark.parametrize('flags, message', [
    (['--arch', 'PRN', '--size', '0x0'], '--size must be WxH in pixels, both at least 1'),
    (['--arch', 'PRN', '--recipe',
      str(REPO / 'options' / 'test_mh2f_demo.yml'), '--train-iters', '1'
      ], 'test_mh2f_demo.yml: --recipe needs a training options file'),
])
def test_compare_flag_mistakes_are_one_line(tmp_path, capsys, flags, message):
    make_input_target(tmp_path / 'data')
    assert main(['compare', '--data', str(tmp_path / 'data'), '--out', str(tmp_path / 'out')] + flags) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err


def test_a_network_that_refuses_the_image_size_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / 'tests' / 'plugins'))
    monkeypatch.setenv('BASICSR_PLUGINS', 'even_size_plugin')
    write(tmp_path / 'data' / 'input' / 'odd.png', np.zeros((15, 17, 3), np.uint8))
    write(tmp_path / 'data' / 'target' / 'odd.png', np.zeros((15, 17, 3), np.uint8))
    assert main(['compare', '--arch', 'EvenSizeNet', '--data',
                 str(tmp_path / 'data'), '--out',
                 str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert 'basicsr compare: error: EvenSizeNet: the network failed on ' in err and 'AssertionError' in err
    assert 'Traceback' not in err


def make_photos(folder):
    """Rainy photos without ground truth: sizes differ, one grayscale, one 16-bit."""
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / 'a.jpg'), photo(0, (200, 230)))
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(photo(1, (192, 210)), cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / 'deep.png'), photo(2, (210, 196)).astype(np.uint16) * 257)


def test_compare_on_photos_without_ground_truth(tmp_path, capsys):
    from basicsr.metrics import calculate_niqe

    import official_layouts
    make_photos(tmp_path / 'photos')
    torch.manual_seed(0)
    torch.save(official_layouts.prenet(recurrent='none', shared=True), tmp_path / 'prn_r.pth')
    out = tmp_path / 'out'
    assert main([
        'compare', '--weights', f'PRN_r={tmp_path / "prn_r.pth"}', '--arch', 'MH2FNet:{num_feat: 8, num_blocks: 2}',
        '--data',
        str(tmp_path / 'photos'), '--figure', 'a,deep,gray', '--tile', '96', '--tile-overlap', '16', '--size', '32x32',
        '--out',
        str(out)
    ]) == 0
    rows = read_table(out)
    assert list(rows[0]) == ['network', 'parameters (M)', 'GMACs (32x32)', 's / MP', 'peak MB / image', 'NIQE']
    assert [row['network'] for row in rows] == ['rainy input', 'MH2FNet', 'PRN_r']
    saved = {name: cv2.imread(str(out / 'outputs' / 'PRN_r' / f'{name}.png')) for name in ('a', 'deep', 'gray')}
    assert float(rows[2]['NIQE']) == pytest.approx(
        np.mean([calculate_niqe(image, 0) for image in saved.values()]), abs=1e-3)
    assert rows[1]['NIQE'] == '' and float(rows[1]['s / MP']) > 0, 'no weights: speed only'
    for name in ('a', 'deep', 'gray'):
        figure = cv2.imread(str(out / f'figure_{name}.png'))
        assert figure is not None and figure.shape[1] > figure.shape[0] / 2
    assert not (out / 'psnr_vs_gmacs.png').exists()
    assert "NIQE (BasicSR's calculate_niqe" in (out / 'comparison.md').read_text()
    rainy = [
        tensor2img(img2tensor(read_image(str(path)), bgr2rgb=True)[None]) for path in (tmp_path / 'photos').iterdir()
    ]
    assert float(rows[0]['NIQE']) == pytest.approx(np.mean([calculate_niqe(image, 0) for image in rainy]), abs=1e-3)


def test_a_folder_with_pairs_and_loose_photos_is_compared_on_its_pairs(tmp_path):
    make_input_target(tmp_path / 'data')
    cv2.imwrite(str(tmp_path / 'data' / 'loose.jpg'), photo(0, (200, 230)))
    assert main([
        'compare', '--arch', 'PRN:{num_feat: 8, num_iters: 1, num_res: 1}', '--data',
        str(tmp_path / 'data'), '--size', '32x32', '--figure', 'none', '--out',
        str(tmp_path / 'out')
    ]) == 0
    assert 'PSNR' in read_table(tmp_path / 'out')[0]


@pytest.mark.parametrize('name, content, message', [
    ('broken.jpg', b'\xff\xd8 not a jpeg', 'broken.jpg: '),
    ('tiny.png', None, 'tiny.png: 60x40 pixels is too small for NIQE'),
])
def test_a_photo_that_cannot_be_scored_is_one_line(tmp_path, capsys, name, content, message):
    make_photos(tmp_path / 'photos')
    if content is None:
        cv2.imwrite(str(tmp_path / 'photos' / name), photo(3, (40, 60)))
    else:
        (tmp_path / 'photos' / name).write_bytes(content)
    assert main(['compare', '--arch', 'PRN', '--data', str(tmp_path / 'photos'), '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert 'basicsr compare: error: ' in err and message in err and 'Traceback' not in err


def test_compare_runs_each_network_with_the_numerics_it_resolved(tmp_path, monkeypatch):
    """``--amp``, ``--channels-last`` and ``--engine`` reach the timed passes, not only the log line."""
    from mh2f_plugin.cli.commands import compare
    from mh2f_plugin.cli.main import build_parser
    make_input_target(tmp_path / 'data')
    seen = {}

    def recording_evaluate(net, dataset, device, **kwargs):
        seen.update(kwargs, runner=net)
        return 1.0, 1.0, None, None

    monkeypatch.setattr(compare, 'evaluate', recording_evaluate)
    args = build_parser().parse_args([
        'compare', '--arch', 'PRN:{num_feat: 8, num_iters: 1, num_res: 1}', '--data',
        str(tmp_path / 'data'), '--size', '32x32', '--amp', 'bf16', '--channels-last', 'on', '--engine', 'torch',
        '--out',
        str(tmp_path / 'out')
    ])
    compare.measure('PRN', {'type': 'PRN', 'num_feat': 8, 'num_iters': 1, 'num_res': 1}, None, args, ())
    assert seen['memory_format'] is torch.channels_last
    assert seen['autocast'].fast_dtype == torch.bfloat16
    pytest.importorskip('openvino', reason='the openvino extra is not installed')
    args.engine = 'openvino'
    compare.measure('PRN', {'type': 'PRN', 'num_feat': 8, 'num_iters': 1, 'num_res': 1}, None, args, ())
    assert type(seen['runner']).__name__ == 'OpenVinoEngine' and seen['runner'].precision == 'bf16'
    assert seen['memory_format'] is torch.contiguous_format


def test_a_measuring_process_that_dies_is_one_line_not_a_hang(tmp_path, capsys, monkeypatch):
    """multiprocessing.Pool.apply waited for ever on a worker the kernel had killed."""
    monkeypatch.syspath_prepend(str(REPO / 'tests' / 'plugins'))
    monkeypatch.setenv('BASICSR_PLUGINS', 'dying_plugin')
    make_input_target(tmp_path / 'data')
    assert main(['compare', '--arch', 'DyingNet', '--data',
                 str(tmp_path / 'data'), '--out',
                 str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert 'basicsr compare: error: DyingNet: the process measuring it died before it finished' in err, err[-2000:]
