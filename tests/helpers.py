"""Helpers shared by the tests: tiny image data made from scikit-image's photographs, dataset
layouts, options files, the installed command, the real data beside the repository."""
import cv2
import numpy as np
import os
import pytest
import subprocess
import sys
import yaml
from pathlib import Path
from skimage import data as skdata

REPO = Path(__file__).resolve().parents[1]
BASICSR = str(Path(sys.executable).with_name('basicsr'))
TORCHRUN = str(Path(sys.executable).with_name('torchrun'))  # the venv's, activated or not
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field')


def photo(index, size):
    """A real RGB photograph from scikit-image, resized to ``size`` (h, w), uint8 BGR for cv2."""
    rgb = getattr(skdata, PHOTOS[index % len(PHOTOS)])()
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (size[1], size[0]), interpolation=cv2.INTER_AREA)


def noisy(img, seed, sigma=20):
    """``img`` with Gaussian noise of standard deviation ``sigma`` (uint8 levels)."""
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def make_paired_folder(root, count, size=(48, 48), offset=0):
    """``root/lq`` and ``root/gt`` with ``count`` noisy/clean PNG pairs under equal names."""
    root = Path(root)
    for sub in ('lq', 'gt'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        clean = photo(i + offset, size)
        cv2.imwrite(str(root / 'gt' / f'{i:03d}.png'), clean)
        cv2.imwrite(str(root / 'lq' / f'{i:03d}.png'), noisy(clean, seed=i + offset))
    return root


def write_yaml(path, options):
    path = Path(path)
    path.write_text(yaml.safe_dump(options, sort_keys=False))
    return path


def subprocess_env(env=None):
    """The environment of a ``basicsr`` subprocess: one thread, this checkout and the test plugins
    first on ``PYTHONPATH`` (so the checkout under test is imported, whatever else is installed)."""
    path = [str(REPO), str(REPO / 'tests' / 'plugins')] + [p for p in [os.environ.get('PYTHONPATH')] if p]
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(path), **(env or {})}


def run_basicsr(args, cwd, env=None, launcher=None, timeout=600):
    """Runs the installed ``basicsr`` command (or ``launcher + [basicsr]``) in ``cwd``."""
    full_env = subprocess_env(env)
    cmd = (launcher or []) + [BASICSR] + [str(a) for a in args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def check_ok(result):
    assert result.returncode == 0, (f'exit {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n'
                                    f'stderr:\n{result.stderr[-4000:]}')
    return result


REALDATA = REPO.parent / 'shared' / 'realdata'
needs_realdata = pytest.mark.skipif(
    not (REALDATA / 'weights').is_dir(), reason=f'{REALDATA} (official weights and Rain10H) is not on this machine')


def realdata_file(item, relative=None):
    """Where ``../shared/realdata/weights`` keeps a zoo entry's file (``relative``, by default its
    own): under ``OWNER_REPO``, shortened for long repository names (``flyywh_JORDER-E``)."""
    owner_repo, rest = (relative or item.relative_path).split(os.sep, 1)
    folder = next(
        f.name for f in (REALDATA / 'weights').iterdir() if owner_repo == f.name or owner_repo.startswith(f.name + '-'))
    return REALDATA / 'weights' / folder / rest


OFFSET = 3  # rainy = clean + OFFSET grey levels, so a wrong partner shows in the pixels


def write(path, img):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def clean_image(ident, size=40):
    """A flat image whose grey level encodes ``ident``."""
    return np.full((size, size, 3), 10 * ident, np.uint8)


def write_pair(lq_path, gt_path, ident):
    write(gt_path, clean_image(ident))
    write(lq_path, clean_image(ident) + OFFSET)


def make_rain200(root, x2=True):
    for i in (1, 2, 10):
        write_pair(root / ('rain/X2' if x2 else 'rain') / f'norain-{i}x2.png', root / 'norain' / f'norain-{i}.png', i)


def make_input_target(root):
    for i, name in enumerate(['a', 'b_2', 'c'], 1):
        write_pair(root / 'input' / f'{name}.png', root / 'target' / f'{name}.bmp', i)


# A x4 super-resolution network: what derain, compare, test and export must refuse as no restorer.
TINY_SR_X4 = {
    'type': 'RRDBNet',
    'num_in_ch': 3,
    'num_out_ch': 3,
    'scale': 4,
    'num_feat': 8,
    'num_block': 1,
    'num_grow_ch': 4
}


def tiny_network():
    """A two-layer SRVGGNetCompact at scale 1: the network of the CLI tests."""
    return {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2, 'upscale': 1}


def paired_folders(name, folder):
    """A ``PairedImageDataset`` over ``folder/gt`` and ``folder/lq``."""
    return {
        'name': name,
        'type': 'PairedImageDataset',
        'dataroot_gt': str(folder / 'gt'),
        'dataroot_lq': str(folder / 'lq'),
        'io_backend': {
            'type': 'disk'
        }
    }


def train_options(name, data, total_iter=20, model_type='SRModel'):
    """A tiny SRVGGNetCompact run on the paired test data, validating and saving at the end."""
    return {
        'name': name,
        'model_type': model_type,
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train':
            dict(
                paired_folders('tiny', data['train']),
                gt_size=32,
                use_hflip=True,
                use_rot=False,
                num_worker_per_gpu=0,
                batch_size_per_gpu=2),
            'val':
            paired_folders('tiny_val', data['val']),
        },
        'network_g': tiny_network(),
        'path': {
            'pretrain_network_g': None,
            'strict_load_g': True,
            'resume_state': None
        },
        'train': {
            'optim_g': {
                'type': 'Adam',
                'lr': 1e-3,
                'betas': [0.9, 0.99]
            },
            'scheduler': {
                'type': 'MultiStepLR',
                'milestones': [10],
                'gamma': 0.5
            },
            'total_iter': total_iter,
            'warmup_iter': -1,
            'pixel_opt': {
                'type': 'L1Loss',
                'loss_weight': 1.0,
                'reduction': 'mean'
            },
        },
        'val': {
            'val_freq': 20,
            'save_img': False,
            'metrics': {
                'psnr': {
                    'type': 'calculate_psnr',
                    'crop_border': 0,
                    'test_y_channel': True
                },
                'ssim': {
                    'type': 'calculate_ssim',
                    'crop_border': 0,
                    'test_y_channel': True
                },
            }
        },
        'logger': {
            'print_freq': 10,
            'save_checkpoint_freq': 20,
            'use_tb_logger': True
        },
        'dist_params': {
            'backend': 'nccl',
            'port': 29500
        },
    }


def eval_options(name, data, weights):
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'test_1': paired_folders('tiny_test', data['val'])
        },
        'network_g': tiny_network(),
        'path': {
            'pretrain_network_g': str(weights),
            'strict_load_g': True,
            'param_key_g': 'params'
        },
        'val': {
            'save_img': True,
            'metrics': {
                'psnr': {
                    'type': 'calculate_psnr',
                    'crop_border': 0
                }
            }
        },
    }
