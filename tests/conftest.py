"""Shared helpers: tiny image data made from scikit-image's photographs, options files, the CLI."""
import cv2
import numpy as np
import os
import pytest
import subprocess
import sys
import yaml
from pathlib import Path
from skimage import data as skdata

import mh2f_plugin  # noqa: F401  (first: fixes BasicSR 1.4.2 imports before any test imports basicsr)

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


@pytest.fixture(scope='session')
def paired_data(tmp_path_factory):
    """Four training pairs and two validation pairs, 48x48."""
    root = tmp_path_factory.mktemp('paired')
    return {'train': make_paired_folder(root / 'train', 4), 'val': make_paired_folder(root / 'val', 2, offset=4)}
