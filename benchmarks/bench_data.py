"""Data throughput: LMDB conversion and training pairs per second, from PNG folders and from LMDB.

Builds a Rain200-sized test tree in a temporary folder (481x321 photographs from scikit-image with
synthetic rain, PNG, ``rain/X2`` + ``norain`` layout), converts it with ``basicsr lmdb`` logic at 1
and 2 workers, then draws 64x64 training pairs (batch 16, flips) through BasicSR's own
``build_dataloader`` with 2 workers from each backend. Prints a Markdown table.

    python benchmarks/bench_data.py [--pairs 200] [--batches 60]
"""
import mh2f_plugin  # noqa: F401  # isort: skip  (BasicSR fixes, before basicsr.data imports torchvision)
import argparse
import cv2
import numpy as np
import os
import tempfile
import time
from basicsr.data import build_dataloader, build_dataset
from skimage import data as skdata

from mh2f_plugin.data import lmdb_store
from mh2f_plugin.data.layouts import find_pairs
from mh2f_plugin.data.rain_synthesis import add_rain

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field')
WIDTH, HEIGHT = 481, 321


def make_tree(root, count):
    """``count`` Rain200-style pairs of WIDTH x HEIGHT PNGs under ``root``."""
    os.makedirs(os.path.join(root, 'rain', 'X2'))
    os.makedirs(os.path.join(root, 'norain'))
    photos = [cv2.resize(cv2.cvtColor(getattr(skdata, n)(), cv2.COLOR_RGB2BGR), (WIDTH, HEIGHT)) for n in PHOTOS]
    for i in range(count):
        clean = np.roll(photos[i % len(photos)], 7 * i, axis=1)
        rainy = add_rain(clean.astype(np.float32) / 255, np.random.default_rng(i))
        cv2.imwrite(os.path.join(root, 'norain', f'norain-{i}.png'), clean)
        cv2.imwrite(os.path.join(root, 'rain', 'X2', f'norain-{i}x2.png'), np.round(rainy * 255).astype(np.uint8))


def pairs_per_second(dataroot, backend, batches):
    opt = {
        'name': 'bench',
        'type': 'PairedDerainDataset',
        'dataroot': dataroot,
        'io_backend': {
            'type': backend
        },
        'phase': 'train',
        'gt_size': 64,
        'use_hflip': True,
        'use_rot': False,
        'batch_size_per_gpu': 16,
        'num_worker_per_gpu': 2,
        'dataset_enlarge_ratio': 1
    }
    loader = build_dataloader(build_dataset(opt), opt, num_gpu=0, dist=False, seed=0)
    iterator = iter(loader)
    next(iterator)  # workers started
    start, count = time.perf_counter(), 0
    while count < batches:
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        count += 1
    return count * batch['lq'].shape[0] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', type=int, default=200)
    parser.add_argument('--batches', type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'Rain200')
        make_tree(src, args.pairs)
        layout, pairs, _ = find_pairs(src)
        images = 2 * len(pairs)
        print(f'{len(pairs)} pairs of {WIDTH}x{HEIGHT} PNG ({layout} layout)\n')
        print('| measurement | value |\n| --- | --- |')
        for workers in (1, 2):
            out = os.path.join(tmp, f'lmdb{workers}')
            start = time.perf_counter()
            lmdb_store.write_lmdb(src, out, pairs, layout=layout, workers=workers, progress=False)
            print(
                f'| `basicsr lmdb` conversion, {workers} worker(s) | '
                f'{images / (time.perf_counter() - start):.0f} images/s |',
                flush=True)
        for backend, root in (('disk', src), ('lmdb', os.path.join(tmp, 'lmdb2'))):
            print(
                f'| training pairs (64x64, batch 16, 2 loader workers) from {backend} | '
                f'{pairs_per_second(root, backend, args.batches):.0f} pairs/s |',
                flush=True)


if __name__ == '__main__':
    main()
