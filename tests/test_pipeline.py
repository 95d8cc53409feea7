"""The shipped recipes end to end: basicsr train / test / derain, and resume after SIGKILL."""
import cv2
import numpy as np
import pytest
import re
import signal
import subprocess
import time
import torch
import yaml
from basicsr.utils import img2tensor, tensor2img

from mh2f_plugin.archs.mh2f_arch import MH2FNet
from mh2f_plugin.models.inference import tiled_forward
from helpers import BASICSR, REPO, check_ok, noisy, photo, run_basicsr, subprocess_env

SHORT_DEMO = [
    '--force_yml', 'train:total_iter=4', 'val:val_freq=4', 'logger:save_checkpoint_freq=4', 'logger:print_freq=2',
    'datasets:train:num_worker_per_gpu=0'
]


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """The demo recipe, shortened to 4 iterations, run in a fresh folder that sees the repo's datasets/."""
    workdir = tmp_path_factory.mktemp('demo')
    (workdir / 'datasets').symlink_to(REPO / 'datasets')
    result = check_ok(run_basicsr(['train', '-opt', REPO / 'options/train_mh2f_demo.yml'] + SHORT_DEMO, cwd=workdir))
    return workdir, result


@pytest.mark.parametrize('recipe', sorted(p.name for p in (REPO / 'options').glob('*.yml')))
def test_recipes_default_to_the_fastest_numerics(recipe):
    """Every recipe leaves amp and channels-last to ``auto``, except those that reproduce published
    numbers, which compute in float32 as their authors did (docs/training.md: Recipes)."""
    options = yaml.safe_load((REPO / 'options' / recipe).read_text())
    reproduces = recipe.startswith('test_') and not recipe.startswith('test_mh2f')  # published weights
    assert options['amp'] == (None if reproduces else 'auto')
    assert options['channels_last'] == 'auto'


def test_demo_recipe_trains_and_validates(demo_run):
    workdir, _ = demo_run
    run = workdir / 'experiments' / 'MH2F_demo'
    for name in ('net_g_4.pth', 'net_g_latest.pth'):
        weights = torch.load(run / 'models' / name)['params']
        assert weights['conv_first.weight'].shape == (16, 3, 3, 3)
    log = '\n'.join(p.read_text() for p in run.glob('train_*.log'))
    assert 'Model [DerainModel] is created.' in log
    assert re.search(r'Validation demo_val\s+# psnr: [\d.]+.*# ssim: [\d.]+', log, re.S)
    assert not list(run.rglob('.saving-*')), 'no temporary folders left behind'


def test_demo_test_prints_a_table_and_writes_images(demo_run):
    workdir, _ = demo_run
    result = check_ok(run_basicsr(['test', '-opt', REPO / 'options/test_mh2f_demo.yml'], cwd=workdir))
    assert '| dataset | psnr | ssim | psnr_rgb |' in result.stdout
    assert re.search(r'^\| demo_val \| [\d.]+ \| 0\.\d+ \| [\d.]+ \|$', result.stdout, re.M)
    images = sorted((workdir / 'results' / 'MH2F_demo' / 'visualization' / 'demo_val').glob('*.png'))
    assert len(images) == 4
    assert all(cv2.imread(str(p)).shape == (96, 96, 3) for p in images)


def test_derain_keeps_odd_sizes_with_tiles_and_side_by_side(demo_run, tmp_path):
    workdir, _ = demo_run
    weights = workdir / 'experiments' / 'MH2F_demo' / 'models' / 'net_g_latest.pth'
    photos = tmp_path / 'photos'
    photos.mkdir()
    sizes = {'a.jpg': (37, 53), 'b.png': (64, 29)}
    for i, (name, size) in enumerate(sizes.items()):
        cv2.imwrite(str(photos / name), photo(i, size))
    out = tmp_path / 'out'
    command = [
        'derain', photos, out, '--weights', weights, '-opt', REPO / 'options/train_mh2f_demo.yml', '--tile', '32',
        '--tile-overlap', '8', '--side-by-side'
    ]
    check_ok(run_basicsr(command, cwd=tmp_path))
    for name, (height, width) in sizes.items():
        stem = name.split('.')[0]
        assert cv2.imread(str(out / f'{stem}.png')).shape == (height, width, 3)
        assert cv2.imread(str(out / f'{stem}_side_by_side.png')).shape == (height, 2 * width, 3)
    single = tmp_path / 'single.png'
    command = [
        'derain', photos / 'a.jpg', single, '--weights', weights, '--channels-last', '--arch-opt',
        '{num_feat: 16, num_blocks: 4}'
    ]
    result = check_ok(run_basicsr(command, cwd=tmp_path))
    assert cv2.imread(str(single)).shape == (37, 53, 3)
    assert "note: --arch-opt is deprecated and will be removed; write --arch 'NAME:{options}'" in result.stderr


def test_derain_errors_name_the_file(demo_run, tmp_path):
    workdir, _ = demo_run
    weights = workdir / 'experiments' / 'MH2F_demo' / 'models' / 'net_g_latest.pth'
    result = run_basicsr(['derain', tmp_path / 'none', tmp_path / 'out', '--weights', weights], cwd=tmp_path)
    assert result.returncode == 2 and 'none: no such file or folder' in result.stderr
    (tmp_path / 'x.png').write_bytes(b'')
    result = run_basicsr(['derain', tmp_path / 'x.png', tmp_path / 'o', '--weights', tmp_path / 'w.pth'], cwd=tmp_path)
    assert result.returncode == 2 and 'w.pth: weights file not found' in result.stderr
    result = run_basicsr(['derain', tmp_path / 'x.png', tmp_path / 'o', '--weights', weights], cwd=tmp_path)
    assert result.returncode == 2 and 'BasicSR weights do not fit MH2FNet: missing blocks.4' in result.stderr  # N=8, 4


def test_training_killed_in_the_middle_of_a_save_resumes_from_the_previous_checkpoint(tmp_path):
    """The run is killed while a training state is half written (a test plugin pauses the write):
    nothing incomplete may be in the models or states folders, and --auto_resume takes the
    previous checkpoint."""
    (tmp_path / 'datasets').symlink_to(REPO / 'datasets')
    options = REPO / 'options/train_mh2f_demo.yml'
    common = [
        'datasets:train:num_worker_per_gpu=0', 'logger:save_checkpoint_freq=2', 'val:val_freq=1000',
        'network_g:num_feat=8', 'network_g:num_blocks=2', 'datasets:train:batch_size_per_gpu=2'
    ]
    marker = tmp_path / 'saving'
    env = subprocess_env({
        'BASICSR_PLUGINS': 'slow_save_plugin',
        'SLOW_SAVE_MARKER': str(marker),
        'SLOW_SAVE_AFTER': '2'
    })
    process = subprocess.Popen(
        [BASICSR, 'train', '-opt', str(options), '--force_yml', 'train:total_iter=1000'] + common,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not marker.exists() and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.exists(), 'the run never reached the paused save'
    run = tmp_path / 'experiments' / 'MH2F_demo'
    assert sorted(p.name for p in (run / 'training_states').iterdir() if not p.name.startswith('.')) == ['2.state']
    for path in list((run / 'training_states').glob('*.state')) + list((run / 'models').glob('*.pth')):
        torch.load(path, weights_only=True)  # everything in place is complete
    result = check_ok(
        run_basicsr(
            ['train', '-opt', options, '--auto_resume', '--force_yml', 'train:total_iter=4'] + common, cwd=tmp_path))
    log = '\n'.join(p.read_text() for p in run.glob('train_*.log'))
    assert re.search(r'Resuming training from epoch: \d+, iter: 2\.', log), result.stdout[-2000:]
    assert (run / 'models' / 'net_g_4.pth').is_file()
    assert not list(run.rglob('.saving-*')), 'the killed run\'s staging folders are removed'


def test_real_rain_options_derain_photos_without_ground_truth(demo_run, tmp_path):
    workdir, _ = demo_run
    photos = tmp_path / 'datasets' / 'real_rain'
    photos.mkdir(parents=True)
    cv2.imwrite(str(photos / 'street.jpg'), photo(3, (100, 200)))  # two 96x96 blocks, as the recipe's NIQE needs
    weights = workdir / 'experiments' / 'MH2F_demo' / 'models' / 'net_g_latest.pth'
    command = [
        'test',
        '-opt',
        REPO / 'options/test_mh2f_real_rain.yml',
        '--force_yml',
        'num_gpu=0',
        f'path:pretrain_network_g={weights}',
        'network_g:num_feat=16',
        'network_g:num_blocks=4',
        'val:tile=32',
        'val:tile_overlap=8',
        'amp=~'  # float32, as the restoration computed below
    ]
    check_ok(run_basicsr(command, cwd=tmp_path))
    out = tmp_path / 'results' / 'MH2F_real_rain' / 'visualization' / 'real_rain' / 'street_derained.png'
    saved = cv2.imread(str(out))
    assert saved.shape == (100, 200, 3)
    net = MH2FNet(num_feat=16, num_blocks=4).eval()
    net.load_state_dict(torch.load(weights)['params'])
    rainy = img2tensor(cv2.imread(str(photos / 'street.jpg')).astype(np.float32) / 255, bgr2rgb=True)[None]
    with torch.no_grad():
        expected = tensor2img(tiled_forward(net, rainy, 32, 8, multiple=4))
    assert np.abs(saved.astype(int) - expected.astype(int)).max() <= 1, 'the saved image is the tiled restoration'
    assert np.abs(saved.astype(int) - cv2.imread(str(photos / 'street.jpg')).astype(int)).mean() > 1


def test_niqe_of_photos_without_ground_truth_through_basicsr_test(tmp_path, monkeypatch, capsys):
    """No-reference scores go through BasicSR's metric options: NIQE on a folder of photos with no
    target, as basicsr test prints and saves it, equals calculate_niqe on the saved results."""
    import csv
    from basicsr.metrics import calculate_niqe

    from mh2f_plugin.cli.main import main
    photos = tmp_path / 'photos'
    photos.mkdir()
    for index in range(2):
        cv2.imwrite(str(photos / f'p{index}.png'), photo(index, (192, 200 + 8 * index)))
    torch.manual_seed(0)
    torch.save({'params': MH2FNet(num_feat=8, num_blocks=2).state_dict()}, tmp_path / 'w.pth')
    options = yaml.safe_load((REPO / 'options' / 'test_mh2f_real_rain.yml').read_text())
    options.update(num_gpu=0, amp=None, network_g={'type': 'MH2FNet', 'num_feat': 8, 'num_blocks': 2})
    options['datasets']['test_1']['dataroot_lq'] = str(photos)
    options['path']['pretrain_network_g'] = str(tmp_path / 'w.pth')
    options['val'].update(metrics={'niqe': {'type': 'calculate_niqe', 'crop_border': 0}})
    (tmp_path / 'real.yml').write_text(yaml.safe_dump(options))
    monkeypatch.chdir(tmp_path)
    assert main(['test', '-opt', str(tmp_path / 'real.yml')]) == 0
    with open(tmp_path / 'results' / options['name'] / 'metrics.csv', newline='') as f:
        reported = float(next(csv.DictReader(f))['niqe'])
    saved = sorted((tmp_path / 'results' / options['name'] / 'visualization' / 'real_rain').glob('*.png'))
    assert len(saved) == 2
    direct = np.mean([calculate_niqe(cv2.imread(str(path)), 0) for path in saved])
    assert np.isfinite(reported) and reported == pytest.approx(direct, abs=1e-4)
    cv2.imwrite(str(photos / 'small.png'), photo(3, (96, 150)))  # one 96x96 block: BasicSR's NIQE is NaN
    assert main(['test', '-opt', str(tmp_path / 'real.yml')]) == 2
    assert "small.png: 150x96 pixels, less crop_border 0 at each side, is smaller than two 96x96 blocks, what " \
        "needs the metric 'niqe' (calculate_niqe)" in capsys.readouterr().err


def make_spa_tree(root, scenes=(274, 301), size=(48, 56)):
    """A tiny SPA-Data tree in the authors' naming: ``real_world/S/S-K/S-K_I_J.png`` rainy crops of
    ``real_world_gt/S/S_I_J.png``, listed in ``real_world.txt``; ``test/rain/N.png`` and
    ``test/gt/Ngt.png`` for the test set."""
    lines = []
    for number, scene in enumerate(scenes):
        clean = photo(number, size)
        for crop in range(2):
            gt = f'real_world_gt/{scene}/{scene}_{crop}_3.png'
            rainy = f'real_world/{scene}/{scene}-14/{scene}-14_{crop}_3.png'
            for path, image in ((gt, clean), (rainy, noisy(clean, seed=crop))):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / path), image)
            lines.append(f'/{rainy} /{gt}')
    (root / 'real_world.txt').write_text('\n'.join(lines) + '\n')
    for number in range(2):
        (root / 'test' / 'rain').mkdir(parents=True, exist_ok=True)
        (root / 'test' / 'gt').mkdir(parents=True, exist_ok=True)
        clean = photo(number + 3, size)
        cv2.imwrite(str(root / 'test' / 'gt' / f'{number}gt.png'), clean)
        cv2.imwrite(str(root / 'test' / 'rain' / f'{number}.png'), noisy(clean, seed=number + 7))


def test_the_spa_recipe_trains_on_spa_datas_training_layout(tmp_path):
    make_spa_tree(tmp_path / 'datasets' / 'SPA-Data')
    short = [
        '--force_yml', 'num_gpu=0', 'train:total_iter=2', 'train:scheduler:milestones=[1, 2]', 'val:val_freq=2',
        'logger:save_checkpoint_freq=2', 'logger:print_freq=1', 'logger:use_tb_logger=false',
        'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0', 'datasets:train:gt_size=32',
        'network_g:num_feat=8', 'network_g:num_blocks=2'
    ]
    check_ok(run_basicsr(['train', '-opt', REPO / 'options' / 'train_mh2f_spa.yml'] + short, cwd=tmp_path))
    log = next((tmp_path / 'experiments' / 'MH2F_SPAData').glob('train_*.log')).read_text()
    assert 'Number of train images: 4' in log and 'Number of val images/folders in SPA-Data_test: 2' in log
    assert re.search(r'# psnr: \d+\.\d+', log), 'validated on the SPA test layout'
    assert (tmp_path / 'experiments' / 'MH2F_SPAData' / 'models' / 'net_g_2.pth').is_file()
