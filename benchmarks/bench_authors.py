"""The authors' own test scripts against ``basicsr derain``, on the same images and weights.

    python benchmarks/bench_authors.py --repos DIR [--realdata ../shared/realdata] [--images 10]
        [--networks PReNet BRN RESCAN SPANet] [--json out.json]

``--repos DIR`` holds git clones of csdwren/PReNet, csdwren/RecDerain, XiaLiPKU/RESCAN and
stevewongv/SPANet, each in a folder named after the repository (``DIR/PReNet``, ...), or in
``DIR/OWNER+NAME/repo``. Nothing is downloaded: clone them yourself. Each script runs from a copy
of its repository's source files at the commit pinned in ``AUTHORS``, in a temporary folder
outside the project, with this Python and its torch. The copies are patched only so that they run
on a CPU with today's packages; each patch says why, and a patch whose text is missing stops the
run. SPANet's IRNN is a CUDA kernel, so its copy gets ``authors_irnn_cpu.py`` as ``irnn.py``.

Both sides are timed as whole commands (start-up, reading, network, writing), in fresh
processes, one after the other: on the first image alone, then on ``--images`` images, after one
untimed run of each on the first image (what a machine pays once is charged to neither). The
difference gives the time per image; one image's time less that, the start-up. Their results on
all images are scored the same way: PSNR on the Y channel against the clean images (BasicSR's
``calculate_psnr``, ``test_y_channel``, as PReNet's table). The table gives the whole command's
seconds, the start-up, the seconds per image, our speed-up on both, both mean PSNRs, and how far
the two sides' 8-bit results differ (mean and largest absolute difference, in levels).
"""
import argparse
import cv2
import json
import numpy as np
import os
import shutil
import subprocess
import sys
import tempfile
import time
import torch
from bench_speed import cpu_name

from mh2f_plugin.utils.markdown import markdown_table

HERE = os.path.dirname(os.path.abspath(__file__))
NO_SKIMAGE_PSNR = ('from skimage.measure.simple_metrics import compare_psnr', '',
                   'a training-time import that scikit-image 0.19 removed')


def _to_cpu_load(call):
    return (call, call[:-1] + ", map_location='cpu')", 'the weights were saved from a GPU')


AUTHORS = {
    'PReNet': {
        'repository':
        'csdwren/PReNet',
        'commit':
        '6d908d1e3c7ff5c26fee624112297ad1c8603ca7',
        'weights':
        'weights/csdwren_PReNet/logs/Rain100H/PReNet6/net_latest.pth',
        'data':
        'Rain10H',
        'patches': {
            'utils.py': [NO_SKIMAGE_PSNR],
            'test_PReNet.py': [_to_cpu_load("torch.load(os.path.join(opt.logdir, 'net_latest.pth'))")],
        },
        'command': [
            'test_PReNet.py', '--logdir', '{weights_dir}', '--data_path', '{rainy}', '--save_path', '{out}',
            '--use_GPU', ''
        ],
    },
    'BRN': {
        'repository':
        'csdwren/RecDerain',
        'commit':
        '5b2ad01d41d3b0cd251d0b4033071b796f234cac',
        'weights':
        'weights/csdwren_RecDerain/logs/Rain100H/BRN/net_latest.pth',
        'data':
        'Rain10H',
        'patches': {
            'utils.py': [NO_SKIMAGE_PSNR],
            'test_BRN.py': [
                _to_cpu_load("torch.load(os.path.join(opt.logdir, 'net_latest.pth'))"),
                ('torch.cuda.synchronize()', 'None', 'it synchronises a GPU even with --use_GPU off'),
            ],
        },
        'command':
        ['test_BRN.py', '--logdir', '{weights_dir}', '--data_path', '{rainy}', '--save_path', '{out}', '--use_GPU', ''],
    },
    'RESCAN': {
        'repository': 'XiaLiPKU/RESCAN',
        'commit': 'e28d1d7cd3d8b276ce88de730de1603bafa30e23',
        'weights': 'weights/csdwren_RecDerain/logs/RainHeavy/RESCAN/latest',
        'data': 'RainHeavy5',
        'cwd': 'config',
        'patches': {
            'config/settings.py': [
                ("data_dir = 'path/to/data/folder'", "data_dir = '{data}'", 'where the test pairs are'),
                ("show_dir = '../showdir'", "show_dir = '{out}'", 'where the results go'),
                ("model_dir = '../models'", "model_dir = '{weights_dir}'", 'where the weights are'),
            ],
            'config/show.py': [
                ('torch.cuda.set_device(settings.device_id)', '', 'no GPU'),
                ('RESCAN().cuda()', 'RESCAN()', 'no GPU'),
                ("batch['O'].cuda()", "batch['O']", 'no GPU'),
                _to_cpu_load('torch.load(ckp_path)'),
            ],
        },
        'command': ['show.py', '-m', 'latest'],
    },
    'SPANet': {
        'repository': 'stevewongv/SPANet',
        'commit': '82d28899c1793170335fdf2527eb365444533c8b',
        'weights': 'weights/stevewongv_SPANet/model/latest',
        'data': 'Rain10H',
        'patches': {
            'main.py': [
                ('from tensorboardX import SummaryWriter', '', 'used for training only'),
                ('import progressbar', 'from progress_shim import progressbar', 'a display-only package'),
                ('torch.device("cuda")', 'torch.device("cpu")', 'no GPU'),
                ('self.multi_gpu = True', 'self.multi_gpu = False', 'no GPU'),
                ('self.num_workers = 16', 'self.num_workers = 2', '16 loader processes on 2 cores'),
                ("self.test_data_path = 'testing/real_test_1000.txt'", "self.test_data_path = 'test_list.txt'",
                 'the test pairs'),
                _to_cpu_load('torch.load(ckp_path)'),
                ('ms.compare_ssim(pred,B,multichannel=True)',
                 'ms.structural_similarity(pred,B,channel_axis=2,data_range=2)', 'renamed in scikit-image 0.19'),
                ('ms.compare_psnr(pred,B)', 'ms.peak_signal_noise_ratio(pred,B,data_range=2)',
                 'renamed in scikit-image 0.19'),
                ('import skimage.measure as ms', 'import skimage.metrics as ms', 'renamed in scikit-image 0.19'),
            ],
        },
        'command': ['main.py', '-a', 'test', '-m', 'latest'],
    },
}

PROGRESS_SHIM = '''"""progressbar's interface, displaying nothing (bench_authors.py)."""
import types


class ProgressBar:
    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        return self

    def update(self, *args):
        pass


progressbar = types.SimpleNamespace(Percentage=lambda: None, Bar=lambda: None, ETA=lambda: None,
                                    ProgressBar=ProgressBar)
'''


def find_repository(repos, repository):
    """The git folder of ``repository`` (``owner/name``) under ``repos``."""
    owner, name = repository.split('/')
    for candidate in (os.path.join(repos, name), os.path.join(repos, f'{owner}+{name}', 'repo')):
        if os.path.isdir(candidate):
            return candidate
    sys.exit(f'bench_authors: error: {repos}: no clone of {repository} (looked for {name}/ and {owner}+{name}/repo/)')


def export(repository_dir, commit, target):
    """The source files (``.py``, ``.cu``) of ``repository_dir`` at ``commit``, written into ``target``;
    weights and data stay out (mirrors may lack those large files)."""
    names = subprocess.run(['git', '-C', repository_dir, 'ls-tree', '-r', '--name-only', commit],
                           check=True,
                           capture_output=True,
                           text=True).stdout.split()
    for name in (n for n in names if n.endswith(('.py', '.cu'))):
        path = os.path.join(target, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(
                subprocess.run(['git', '-C', repository_dir, 'show', f'{commit}:{name}'],
                               check=True,
                               capture_output=True).stdout)


def apply_patches(tree, patches, values):
    for relative, edits in patches.items():
        path = os.path.join(tree, relative)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for old, new, why in edits:
            if old not in text:
                sys.exit(f'bench_authors: error: {path}: patch text not found ({why}): {old!r}')
            text = text.replace(old, new.format(**values))
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)


def pairs_of(realdata, data, count):
    """``[(name, rainy path, clean path)]``: the first ``count`` pairs of the named test set."""
    if data == 'Rain10H':
        root = os.path.join(realdata, 'Rain10H')
        names = [f'rain-{i:03d}.png' for i in range(1, 11)][:count]
        return [(n, os.path.join(root, 'rainy', n), os.path.join(root, 'no' + n)) for n in names]
    root = os.path.join(realdata, 'RainHeavy5_JORDER-E/small')
    names = sorted(os.listdir(os.path.join(root, 'rain')), key=lambda n: int(n.split('-')[1].split('.')[0]))
    return [(n, os.path.join(root, 'rain', n), os.path.join(root, 'norain', n)) for n in names[:count]]


def prepare_inputs(network, tree, pairs, work):
    """The authors' input layout for ``network``; returns the format values of its command and patches."""
    rainy = os.path.join(work, 'rainy')
    os.makedirs(rainy)
    for name, rain, _ in pairs:
        os.symlink(rain, os.path.join(rainy, name))
    values = {'rainy': rainy, 'out': os.path.join(work, 'authors_out'), 'data': os.path.join(work, 'pairs')}
    if network == 'RESCAN':
        os.makedirs(os.path.join(values['data'], 'test'))
        for name, rain, clean in pairs:
            cv2.imwrite(
                os.path.join(values['data'], 'test', name),
                np.concatenate([cv2.imread(clean), cv2.imread(rain)], 1))
    if network == 'SPANet':
        os.makedirs(os.path.join(tree, 'pairs'))
        lines = []
        for name, rain, clean in pairs:
            for kind, path in (('rain', rain), ('clean', clean)):
                os.symlink(path, os.path.join(tree, 'pairs', f'{kind}-{name}'))
            lines.append(f'/pairs/rain-{name} /pairs/clean-{name}\n')
        with open(os.path.join(tree, 'test_list.txt'), 'w', encoding='utf-8') as f:
            f.writelines(lines)
        with open(os.path.join(tree, 'progress_shim.py'), 'w', encoding='utf-8') as f:
            f.write(PROGRESS_SHIM)
        shutil.copy(os.path.join(HERE, 'authors_irnn_cpu.py'), os.path.join(tree, 'irnn.py'))
        values['out'] = os.path.join(work, 'realtest/derain5_real')
    return values


def authors_outputs(network, values, pairs):
    """The authors' result for each pair, in the order of ``pairs``."""
    out = values['out']
    if network == 'RESCAN':
        last = max(int(n.rsplit('_', 1)[1].split('.')[0]) for n in os.listdir(out))
        return [os.path.join(out, f'{os.path.splitext(name)[0]}_{last}.png') for name, _, _ in pairs]
    if network == 'SPANet':
        return [os.path.join(out, f'{i + 1}.png') for i in range(len(pairs))]
    return [os.path.join(out, name) for name, _, _ in pairs]


def mean_psnr(results, pairs):
    from basicsr.metrics import calculate_psnr  # after mh2f_plugin's BasicSR fixes
    return float(
        np.mean([
            calculate_psnr(cv2.imread(result), cv2.imread(clean), crop_border=0, test_y_channel=True)
            for result, (_, _, clean) in zip(results, pairs)
        ]))


def timed(command, cwd, log):
    start = time.perf_counter()
    with open(log, 'w', encoding='utf-8') as f:
        done = subprocess.run(command, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode:
        with open(log, encoding='utf-8') as f:
            sys.exit(f'bench_authors: error: {" ".join(command)} failed:\n{f.read()[-3000:]}')
    return seconds


def run_both(network, args, pairs, work):
    """Both commands on ``pairs``: ``(authors' s, our s, authors' PSNR, our PSNR, output differences)``."""
    spec = AUTHORS[network]
    tree = os.path.join(work, 'tree')
    export(find_repository(args.repos, spec['repository']), spec['commit'], tree)
    weights = os.path.join(args.realdata, spec['weights'])
    values = prepare_inputs(network, tree, pairs, work)
    values['weights_dir'] = os.path.dirname(weights)
    if network == 'SPANet':
        target = os.path.join(tree, 'model', 'latest')
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(weights, target)
    apply_patches(tree, spec['patches'], values)
    command = [sys.executable] + [part.format(**values) for part in spec['command']]
    theirs = timed(command, os.path.join(tree, spec.get('cwd', '')), os.path.join(work, 'authors.log'))
    ours_out = os.path.join(work, 'ours_out')
    basicsr = os.path.join(os.path.dirname(sys.executable), 'basicsr')
    ours = timed([basicsr, 'derain', values['rainy'], ours_out, '--weights', weights], work,
                 os.path.join(work, 'ours.log'))
    theirs_files = authors_outputs(network, values, pairs)
    ours_files = [os.path.join(ours_out, name) for name, _, _ in pairs]
    return (theirs, ours, mean_psnr(theirs_files, pairs), mean_psnr(ours_files,
                                                                    pairs), differences(theirs_files, ours_files))


def differences(theirs_files, ours_files):
    """``(mean, largest)`` absolute difference between the two sides' 8-bit results, in levels."""
    diffs = [np.abs(cv2.imread(a).astype(int) - cv2.imread(b).astype(int)) for a, b in zip(theirs_files, ours_files)]
    return float(np.mean([d.mean() for d in diffs])), int(max(d.max() for d in diffs))


def measure(network, args):
    """One network's row: both commands on one image, then on all; the difference gives the time
    per image, and one image's time less that gives the start-up. Both first run once on one image,
    untimed: what a machine pays once (reading the libraries from disk, exporting the network for
    an engine) is not charged to either side."""
    spec = AUTHORS[network]
    pairs = pairs_of(args.realdata, spec['data'], args.images)
    runs = {}
    with tempfile.TemporaryDirectory(prefix=f'bench_authors_{network}_warm_up_') as work:
        run_both(network, args, pairs[:1], work)
    for count in (1, len(pairs)):
        with tempfile.TemporaryDirectory(prefix=f'bench_authors_{network}_') as work:
            runs[count] = run_both(network, args, pairs[:count], work)
    row = {'network': network, 'data': spec['data'], 'images': len(pairs)}
    for side, index in (('authors', 0), ('ours', 1)):
        per_image = (runs[len(pairs)][index] - runs[1][index]) / (len(pairs) - 1)
        row.update({
            f'{side}_s': runs[len(pairs)][index],
            f'{side}_per_image_s': per_image,
            f'{side}_startup_s': runs[1][index] - per_image,
            f'{side}_psnr': runs[len(pairs)][index + 2],
        })
    row['mean_difference'], row['largest_difference'] = runs[len(pairs)][4]
    return row


def cpu_flags():
    with open('/proc/cpuinfo', encoding='utf-8') as f:
        flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    return [flag for flag in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if flag in flags]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repos', required=True, help='folder of git clones of the authors\' repositories')
    parser.add_argument('--realdata', default=os.path.join(HERE, '..', '..', 'shared', 'realdata'))
    parser.add_argument('--images', type=int, default=10, help='pairs per network (at most 10; RESCAN: 5)')
    parser.add_argument('--networks', nargs='+', choices=sorted(AUTHORS), default=list(AUTHORS))
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args()
    args.realdata = os.path.abspath(args.realdata)
    print(f"{cpu_name()} ({', '.join(cpu_flags())}), {torch.get_num_threads()} threads, torch {torch.__version__}")
    rows = []
    for network in args.networks:
        row = measure(network, args)
        rows.append(row)
        print(
            f"{network}: authors {row['authors_s']:.1f} s, {row['authors_psnr']:.2f} dB; "
            f"ours {row['ours_s']:.1f} s, {row['ours_psnr']:.2f} dB",
            flush=True)
    print(
        markdown_table([
            'network', 'images', "authors' script: s", 'start-up s', 's / image', 'basicsr derain: s', 'start-up s',
            's / image', 'speed-up: whole', 'per image', "PSNR: authors'", 'ours', 'outputs differ: mean', 'largest'
        ], [[
            r['network'], f"{r['data']}, {r['images']}", *(f"{r[f'{side}_{key}']:.1f}" for side in ('authors', 'ours')
                                                           for key in ('s', 'startup_s', 'per_image_s')),
            f"{r['authors_s'] / r['ours_s']:.2f}x", f"{r['authors_per_image_s'] / r['ours_per_image_s']:.2f}x",
            f"{r['authors_psnr']:.2f}", f"{r['ours_psnr']:.2f}", f"{r['mean_difference']:.2f}",
            str(r['largest_difference'])
        ] for r in rows]))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
