"""The PReNet and RESCAN baselines, and basicsr compare."""
import csv
import time

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.archs.prenet_arch import PReNet
from mh2f_plugin.archs.rescan_arch import RESCAN
from mh2f_plugin.cli.compare import evaluate
from mh2f_plugin.cli.main import main
from test_datasets import make_input_target


def count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize('arch, expected', [
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
    assert main(['compare'] + TINY + ['--data', str(tmp_path / 'data'), '--size', '64x48',
                                      '--out', str(tmp_path / 'out')]) == 0
    rows = read_table(tmp_path / 'out')
    assert [r['network'] for r in rows] == ['MH2FNet', 'PReNet']
    assert set(rows[0]) == {'network', 'parameters (M)', 'GMACs (64x48)', 'ms / image', 'peak MB / image', 'PSNR',
                            'SSIM'}
    assert float(rows[0]['parameters (M)']) == pytest.approx(
        count(ARCH_REGISTRY.get('MH2FNet')(num_feat=8, num_blocks=2)) / 1e6, abs=1e-3)
    assert all(float(r['GMACs (64x48)']) > 0 and float(r['ms / image']) > 0 for r in rows)
    assert all(float(r['peak MB / image']) > 0 for r in rows), 'each network is measured in a fresh process'
    assert rows[0]['PSNR'] == ''  # no weights, no training: no quality numbers
    assert '| MH2FNet |' in capsys.readouterr().out


def test_compare_after_a_shared_short_training(tmp_path, monkeypatch):
    from conftest import REPO
    make_input_target(tmp_path / 'data')
    (tmp_path / 'datasets').symlink_to(REPO / 'datasets')
    monkeypatch.chdir(tmp_path)
    recipe = str(REPO / 'options/train_mh2f_demo.yml')
    assert main(['compare'] + TINY + ['--data', 'datasets/demo/val', '--recipe', recipe, '--train-iters', '2',
                                      '--size', '32x32', '--out', 'out']) == 0
    rows = read_table(tmp_path / 'out')
    assert len(rows) == 2
    for row in rows:
        assert 5 < float(row['PSNR']) < 60 and 0 < float(row['SSIM']) <= 1
    assert (tmp_path / 'out' / 'psnr_vs_gmacs.png').stat().st_size > 1000
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
    assert main(['compare', '--arch', 'RIDNet:{in_channels: 3, mid_channels: 16, out_channels: 3}', '--arch',
                 'SwinIR:{upscale: 1, upsampler: "", img_size: 16, window_size: 4, embed_dim: 12, depths: [1], '
                 'num_heads: [2], mlp_ratio: 1}', '--data', str(tmp_path / 'data'), '--size', '37x29',
                 '--out', str(tmp_path / 'out')]) == 0
    assert [r['network'] for r in read_table(tmp_path / 'out')] == ['RIDNet', 'SwinIR']
