"""The shipped recipes end to end: basicsr train / test / derain, and resume after SIGKILL."""
import os
import re
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
import torch

from conftest import BASICSR, REPO, check_ok, photo, run_basicsr

SHORT_DEMO = ['--force_yml', 'train:total_iter=4', 'val:val_freq=4', 'logger:save_checkpoint_freq=4',
              'logger:print_freq=2', 'datasets:train:num_worker_per_gpu=0']


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """The demo recipe, shortened to 4 iterations, run in a fresh folder that sees the repo's datasets/."""
    workdir = tmp_path_factory.mktemp('demo')
    (workdir / 'datasets').symlink_to(REPO / 'datasets')
    result = check_ok(run_basicsr(['train', '-opt', REPO / 'options/train_mh2f_demo.yml'] + SHORT_DEMO, cwd=workdir))
    return workdir, result


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
    check_ok(run_basicsr(['derain', photos, out, '--weights', weights, '-opt', REPO / 'options/train_mh2f_demo.yml',
                          '--tile', '32', '--tile-overlap', '8', '--side-by-side'], cwd=tmp_path))
    for name, (height, width) in sizes.items():
        stem = name.split('.')[0]
        assert cv2.imread(str(out / f'{stem}.png')).shape == (height, width, 3)
        assert cv2.imread(str(out / f'{stem}_side_by_side.png')).shape == (height, 2 * width, 3)
    single = tmp_path / 'single.png'
    check_ok(run_basicsr(['derain', photos / 'a.jpg', single, '--weights', weights, '--channels-last',
                          '--arch-opt', '{num_feat: 16, num_blocks: 4}'], cwd=tmp_path))
    assert cv2.imread(str(single)).shape == (37, 53, 3)


def test_derain_errors_name_the_file(demo_run, tmp_path):
    workdir, _ = demo_run
    weights = workdir / 'experiments' / 'MH2F_demo' / 'models' / 'net_g_latest.pth'
    result = run_basicsr(['derain', tmp_path / 'none', tmp_path / 'out', '--weights', weights], cwd=tmp_path)
    assert result.returncode == 2 and 'none: no such file or folder' in result.stderr
    (tmp_path / 'x.png').write_bytes(b'')
    result = run_basicsr(['derain', tmp_path / 'x.png', tmp_path / 'o', '--weights', tmp_path / 'w.pth'], cwd=tmp_path)
    assert result.returncode == 2 and 'w.pth: weights file not found' in result.stderr
    result = run_basicsr(['derain', tmp_path / 'x.png', tmp_path / 'o', '--weights', weights], cwd=tmp_path)
    assert result.returncode == 2 and 'BasicSR weights do not fit MH2FNet: missing blocks.4' in result.stderr  # N 8 vs 4


def test_training_killed_with_sigkill_resumes_from_the_last_state(tmp_path):
    (tmp_path / 'datasets').symlink_to(REPO / 'datasets')
    options = REPO / 'options/train_mh2f_demo.yml'
    common = ['datasets:train:num_worker_per_gpu=0', 'logger:save_checkpoint_freq=2', 'val:val_freq=1000',
              'network_g:num_feat=8', 'network_g:num_blocks=2', 'datasets:train:batch_size_per_gpu=2']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    process = subprocess.Popen([BASICSR, 'train', '-opt', str(options), '--force_yml', 'train:total_iter=1000']
                               + common, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = tmp_path / 'experiments' / 'MH2F_demo' / 'training_states'
    deadline = time.time() + 120
    while time.time() < deadline and len(list(states.glob('*.state'))) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(int(p.stem) for p in states.glob('*.state'))
    assert saved, 'no training state was saved before the kill'
    last = saved[-1]
    for state in states.glob('*.state'):
        torch.load(state)  # every state on disk is complete
    result = check_ok(run_basicsr(['train', '-opt', options, '--auto_resume', '--force_yml',
                                   f'train:total_iter={last + 4}'] + common, cwd=tmp_path))
    log = '\n'.join(p.read_text() for p in (tmp_path / 'experiments' / 'MH2F_demo').glob('train_*.log'))
    assert re.search(rf'Resuming training from epoch: \d+, iter: {last}\.', log), result.stdout[-2000:]
    assert re.search(rf'Start training from epoch: \d+, iter: {last}$', log, re.M)
    assert (tmp_path / 'experiments' / 'MH2F_demo' / 'models' / f'net_g_{last + 4}.pth').is_file()


def test_real_rain_options_derain_photos_without_ground_truth(demo_run, tmp_path):
    workdir, _ = demo_run
    photos = tmp_path / 'datasets' / 'real_rain'
    photos.mkdir(parents=True)
    cv2.imwrite(str(photos / 'street.jpg'), photo(3, (45, 70)))
    weights = workdir / 'experiments' / 'MH2F_demo' / 'models' / 'net_g_latest.pth'
    check_ok(run_basicsr(['test', '-opt', REPO / 'options/test_mh2f_real_rain.yml', '--force_yml', 'num_gpu=0',
                          f'path:pretrain_network_g={weights}', 'network_g:num_feat=16', 'network_g:num_blocks=4',
                          'val:tile=32', 'val:tile_overlap=8'], cwd=tmp_path))
    out = tmp_path / 'results' / 'MH2F_real_rain' / 'visualization' / 'real_rain' / 'street_derained.png'
    assert cv2.imread(str(out)).shape == (45, 70, 3)
    assert np.isfinite(cv2.imread(str(out)).astype(float)).all()
