"""Complexity and speed of every registered deraining network at its published defaults.

    python benchmarks/bench_baselines.py [--device cuda] [--images 3]

Runs ``basicsr compare`` (no weights: complexity and speed only) on ``--images`` rainy/clean pairs
of 481x321 (a Rain100H/Rain200H test size) made from scikit-image's photographs, so parameters,
GMACs, milliseconds and peak memory per image are measured the way the comparison tables are,
each network in a fresh process, in float32 with the default memory format (the reference that
``benchmarks/bench_numerics.py`` compares the faster numerics with). Also prints this machine's
float32 matmul peak and each network's share of it (2 FLOPs per multiply-accumulate), so runs on
different machines compare as ratios.
"""
import argparse
import csv
import cv2
import os
import tempfile
import torch
from bench_speed import device_name, matmul_peak_gflops
from skimage import data as skdata

from mh2f_plugin.cli.main import main as basicsr
from mh2f_plugin.utils.markdown import markdown_table

NETWORKS = ('MH2FNet', 'PReNet', 'PReNet_r', 'PRN', 'PRN_r', 'BRN', 'RESCAN', 'SPANet', 'RCDNet', 'SIRR', 'DRDNet',
            'MARDNet', 'JORDERE', 'NLEDN', 'UMRL', 'DDN', 'VRGNet')
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def make_pairs(root, count):
    """``count`` 481x321 pairs in ``root/input`` and ``root/target`` (a streak pattern as rain)."""
    for sub in ('input', 'target'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(count):
        clean = cv2.resize(getattr(skdata, PHOTOS[i % len(PHOTOS)])(), (481, 321), interpolation=cv2.INTER_AREA)
        clean = cv2.cvtColor(clean, cv2.COLOR_RGB2BGR)
        rainy = clean.copy()
        rainy[:, ::7] = 230
        cv2.imwrite(os.path.join(root, 'input', f'{i}.png'), rainy)
        cv2.imwrite(os.path.join(root, 'target', f'{i}.png'), clean)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--images', type=int, default=3)
    parser.add_argument('--networks', nargs='+', default=list(NETWORKS))
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak_gflops(device)
    name = device_name(device, torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        make_pairs(os.path.join(tmp, 'data'), args.images)
        argv = [
            'compare', '--data',
            os.path.join(tmp, 'data'), '--device', args.device, '--figure', 'none', '--out',
            os.path.join(tmp, 'out'), '--amp', 'off', '--channels-last', 'off', '--winograd', 'off'
        ]
        for network in args.networks:
            argv += ['--arch', network]
        if basicsr(argv) != 0:
            raise SystemExit(1)
        with open(os.path.join(tmp, 'out', 'comparison.csv'), newline='', encoding='utf-8') as f:
            rows = list(csv.DictReader(f))[1:]
    print(f'\n{name}; float32 matmul peak {peak:.1f} GFLOP/s\n')
    table = []
    for row in rows:
        gmacs, ms = float(row['GMACs (481x321)']), float(row['ms / image'])
        achieved = 2 * gmacs / (ms / 1e3)
        table.append((row['network'], row['parameters (M)'], f'{gmacs:.2f}', f'{ms:.0f}', f'{achieved:.1f}',
                      f'{100 * achieved / peak:.0f}%', row['peak MB / image']))
    print(
        markdown_table(
            ('network', 'parameters (M)', 'GMACs (481x321)', 'ms / image', 'GFLOP/s', '% of fp32 peak', 'peak MB'),
            table))


if __name__ == '__main__':
    main()
