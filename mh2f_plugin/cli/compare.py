"""``basicsr compare``: registered restorers side by side on one dataset, as a paper's table.

    basicsr compare --arch 'MH2FNet:{num_feat: 16, num_blocks: 4}' --arch PReNet --arch RESCAN \\
        --data datasets/demo/val --recipe options/train_mh2f_demo.yml --train-iters 300 --out comparison

Each network is an arch name with optional options (``NAME`` or ``NAME:{yaml}``) or the
``network_g`` of an options file (``--opt``). For each: parameters and GMACs at ``--size``
(``mmengine.analysis``), milliseconds and peak memory per image on this machine, and PSNR/SSIM
(Y channel, no crop) on ``--data``, with weights from ``--weights LABEL=W.pth`` or trained here
with the shared ``--recipe`` for ``--train-iters`` iterations. Writes ``OUT/comparison.md``,
``OUT/comparison.csv`` and ``OUT/psnr_vs_gmacs.png``.
"""
import argparse
import csv
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import yaml
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.cli.derain import load_weights
from mh2f_plugin.cli.measure import PeakMemory, macs
from mh2f_plugin.cli.options import OptionsError, load_options, registered
from mh2f_plugin.cli.plugins import load_plugins
from mh2f_plugin.data.paired_derain_dataset import PairedDerainDataset
from mh2f_plugin.models.inference import padded_size, restore, size_multiple

COLUMNS = ('network', 'parameters (M)', 'GMACs', 'ms / image', 'peak MB / image', 'PSNR', 'SSIM')


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='basicsr compare', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', action='append', default=[], help="NAME or 'NAME:{yaml options}'; repeatable")
    parser.add_argument('--opt', action='append', default=[], help='options file whose network_g to compare')
    parser.add_argument('--data', required=True, help='paired test data (any PairedDerainDataset layout)')
    parser.add_argument('--layout', default='auto')
    parser.add_argument('--weights', action='append', default=[], help='LABEL=W.pth (labels as in the table)')
    parser.add_argument('--recipe', help='training options file shared by every network (with --train-iters)')
    parser.add_argument('--train-iters', type=int, help='train each network without weights for this many iterations')
    parser.add_argument('--size', default='481x321', help='WxH at which GMACs are counted. Default: 481x321')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default='comparison', help='output folder. Default: comparison')
    args = parser.parse_args(argv)
    if not args.arch and not args.opt:
        parser.error('name at least one network with --arch or --opt')
    if args.train_iters and not args.recipe:
        parser.error('--train-iters needs --recipe (the shared training options file)')
    if not re.fullmatch(r'\d+x\d+', args.size):
        parser.error(f'--size must be WxH, got {args.size!r}')
    return args


def network_specs(args):
    """``[(label, network options)]`` from ``--arch`` and ``--opt``; labels are unique."""
    specs = []
    for spec in args.arch:
        name, _, options = spec.partition(':')
        options = yaml.safe_load(options) if options else {}
        if not isinstance(options, dict):
            raise OptionsError(f'--arch {spec!r}: the options after ":" must be a YAML mapping')
        specs.append({'type': name.strip(), **options})
    for path in args.opt:
        opt = load_options(path)
        if 'network_g' not in opt:
            raise OptionsError(f"{path}: missing key 'network_g'")
        specs.append(dict(opt['network_g']))
    labelled, counts = [], {}
    for network_opt in specs:
        name = network_opt['type']
        if not registered(ARCH_REGISTRY, name):
            raise OptionsError(f"unknown arch '{name}'. Registered archs: {', '.join(sorted(ARCH_REGISTRY.keys()))}")
        counts[name] = counts.get(name, 0) + 1
        labelled.append((name if counts[name] == 1 else f'{name}_{counts[name]}', network_opt))
    return labelled


def train(label, network_opt, args):
    """Trains one network with the shared recipe in a ``basicsr train`` process; returns its weights."""
    opt = load_options(args.recipe)
    name = 'compare_' + re.sub(r'\W', '_', label)
    opt.update(name=name, network_g=network_opt)
    opt['datasets'] = {'train': opt['datasets']['train']}
    opt.pop('val', None)
    opt['train']['total_iter'] = args.train_iters
    opt['logger'].update(save_checkpoint_freq=args.train_iters, use_tb_logger=False)
    path = os.path.join(args.out, f'{name}.yml')
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(dict_tree(opt), f, sort_keys=False)
    result = subprocess.run([sys.executable, '-m', 'mh2f_plugin.cli.main', 'train', '-opt', path])
    if result.returncode != 0:
        raise OptionsError(f'training {label} with {path} failed (exit {result.returncode})')
    return os.path.join('experiments', name, 'models', 'net_g_latest.pth')


def dict_tree(node):
    """Ordered dicts (BasicSR's YAML loader) as plain dicts, for safe_dump."""
    return {k: dict_tree(v) for k, v in node.items()} if isinstance(node, dict) else node


def evaluate(net, dataset, device, multiple, with_metrics):
    """Mean ms and peak MB per image, and mean PSNR/SSIM (Y, no crop) when ``with_metrics``;
    inputs are padded to ``multiple``. The first image is restored once untimed before it is
    timed, so that one-time set-up (kernel selection, allocator growth) is not charged to the
    time per image; the peak memory still counts that first pass."""
    times, peaks, psnrs, ssims = [], [], [], []
    for index, item in enumerate(dataset):
        lq = item['lq'][None].to(device)
        with torch.no_grad(), PeakMemory(device) as peak:
            if index == 0:
                restore(net, lq, multiple=multiple)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            out = restore(net, lq, multiple=multiple)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1e3)
        peaks.append(peak.mb)
        if with_metrics:
            result, gt = tensor2img(out.cpu()), tensor2img(item['gt'][None])
            psnrs.append(calculate_psnr(result, gt, 0, test_y_channel=True))
            ssims.append(calculate_ssim(result, gt, 0, test_y_channel=True))
    return statistics.fmean(times), max(peaks), _mean_or_none(psnrs), _mean_or_none(ssims)


def _mean_or_none(values):
    return statistics.fmean(values) if values else None


def measure(network_opt, weights_path, args):
    """``(parameters, GMACs, ms, peak MB, PSNR, SSIM)`` of one network, measured in this process.

    Run by ``compare_networks`` in a fresh process per network, so that no allocator cache of an
    earlier network hides this one's memory. GMACs are counted last for the same reason.
    """
    load_plugins()
    device = torch.device(args.device)
    dataset = PairedDerainDataset({'name': 'compare', 'dataroot': args.data, 'layout': args.layout,
                                   'io_backend': {'type': 'disk'}, 'phase': 'val'})
    net = build_network(network_opt)
    if weights_path:
        net.load_state_dict(load_weights(weights_path))
    net = net.to(device).eval()
    multiple = size_multiple(net)
    ms, peak, psnr, ssim = evaluate(net, dataset, device, multiple, with_metrics=weights_path is not None)
    width, height = (int(v) for v in args.size.split('x'))
    with torch.no_grad():
        gmacs = macs(net, (3, padded_size(height, multiple), padded_size(width, multiple))) / 1e9
    return sum(p.numel() for p in net.parameters()), gmacs, ms, peak, psnr, ssim


def compare_networks(argv):
    args = parse_args(argv)
    specs = network_specs(args)
    weights = dict(item.split('=', 1) for item in args.weights)
    unknown = set(weights) - {label for label, _ in specs}
    if unknown:
        raise OptionsError(f"--weights for unknown label(s) {', '.join(sorted(unknown))}; "
                           f"labels: {', '.join(label for label, _ in specs)}")
    os.makedirs(args.out, exist_ok=True)
    count = len(PairedDerainDataset({'name': 'compare', 'dataroot': args.data, 'layout': args.layout,
                                     'io_backend': {'type': 'disk'}, 'phase': 'val'}))
    rows = []
    for label, network_opt in specs:
        path = weights.get(label) or (train(label, network_opt, args) if args.train_iters else None)
        with multiprocessing.get_context('spawn').Pool(1) as pool:
            params, gmacs, ms, peak, psnr, ssim = pool.apply(measure, (network_opt, path, args))
        rows.append([label, f'{params / 1e6:.3f}', f'{gmacs:.2f}', f'{ms:.1f}', f'{peak:.1f}',
                     f'{psnr:.2f}' if psnr is not None else '', f'{ssim:.4f}' if ssim is not None else ''])
    columns = list(COLUMNS)
    columns[2] = f'GMACs ({args.size})'
    write_outputs(args.out, columns, rows, f'{count} images of {args.data}, {args.device}; each network measured '
                  'in a fresh process, peak MB being the memory growth while restoring one image')


def write_outputs(out, columns, rows, caption):
    with open(os.path.join(out, 'comparison.csv'), 'w', newline='', encoding='utf-8') as f:
        csv.writer(f).writerows([columns] + rows)
    table = '\n'.join(['| ' + ' | '.join(columns) + ' |', '|' + ' --- |' * len(columns)]
                      + ['| ' + ' | '.join(row) + ' |' for row in rows])
    with open(os.path.join(out, 'comparison.md'), 'w', encoding='utf-8') as f:
        f.write(f'{table}\n\nPSNR/SSIM on the Y channel, no border crop; {caption}.\n')
    plot(os.path.join(out, 'psnr_vs_gmacs.png'), columns[2], rows)
    print(table)
    print(f'\n(written to {out}/comparison.md, comparison.csv, psnr_vs_gmacs.png)')


def plot(path, gmacs_label, rows):
    """PSNR against GMACs, one labelled point per network with a PSNR."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, _, gmacs, _, _, psnr, _ in rows:
        if psnr:
            axes.scatter(float(gmacs), float(psnr))
            axes.annotate(label, (float(gmacs), float(psnr)), textcoords='offset points', xytext=(4, 4))
    axes.margins(0.15)  # room for the labels of the outermost points
    axes.set_xlabel(gmacs_label)
    axes.set_ylabel('PSNR (dB, Y channel)')
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
