"""Compare registered restorers on one test set, as a paper's table and figure.

    basicsr compare --weights prenet6-rain100h --weights PRN=logs/Rain100H/PRN6/net_latest.pth \\
        --data datasets/Rain100H --out comparison

Each row is a network: ``--arch NAME`` or ``--arch 'NAME:{yaml}'``, the ``network_g`` of an
options file (``-opt``), or weights (``--weights LABEL=W.pth``, any format that ``basicsr
convert-weights`` reads, or a zoo name; the network comes from the file when no ``--arch`` has
that label). For each: parameters and GMACs at ``--size`` (``mmengine.analysis``), milliseconds and
peak memory per image on this machine, and PSNR/SSIM (Y channel, no crop) on ``--data``, with
weights from ``--weights`` or trained here with the shared ``--recipe`` for ``--train-iters``
iterations. The first row is the rainy input itself. ``--data`` may also be a folder of rainy
photos without ground truth: the table then scores NIQE and time per megapixel, and the figures
zoom where the methods changed the photo most. Writes ``OUT/comparison.md``,
``OUT/comparison.csv``, ``OUT/psnr_vs_gmacs.png``, each network's restored images for the
figure (``OUT/outputs/LABEL/``) and one figure per ``--figure`` image (``OUT/figure_NAME.png``).
"""
import csv
import cv2
import multiprocessing
import os
import re
import subprocess
import sys
import torch
import yaml
from basicsr.archs import build_network
from basicsr.utils import tensor2img
from basicsr.utils.registry import ARCH_REGISTRY
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mh2f_plugin.cli.flags import (add_arch, add_device, add_layout, add_numerics, add_options_file, add_param_key,
                                   add_tile, add_zoo_dir, check_tile, parse_device, parse_size, resolve_numerics)
from mh2f_plugin.cli.plugins import load_plugins
from mh2f_plugin.data.image_io import write_image
from mh2f_plugin.data.paired_derain_dataset import PairedDerainDataset
from mh2f_plugin.data.photo_folder import open_test_set
from mh2f_plugin.errors import NotARestorerError, OptionsError, ResourceError, UserError
from mh2f_plugin.models.inference import padded_size, size_multiple
from mh2f_plugin.models.scoring import (RAINY, draw_paired_figure, draw_photo_figure, evaluate, input_scores,
                                        mean_or_none, niqe)
from mh2f_plugin.utils.allocator import keep_freed_memory
from mh2f_plugin.utils.figure import draw_labelled_points
from mh2f_plugin.utils.file_names import safe_file_name
from mh2f_plugin.utils.markdown import markdown_table
from mh2f_plugin.utils.measure import macs
from mh2f_plugin.utils.options import load_options, network_of, parse_arch_spec
from mh2f_plugin.utils.options_validation import check_component
from mh2f_plugin.weights import zoo
from mh2f_plugin.weights.loader import load_network

COLUMNS = ('network', 'parameters (M)', 'GMACs', 'ms / image', 'peak MB / image', 'PSNR', 'SSIM')
PHOTO_COLUMNS = ('network', 'parameters (M)', 'GMACs', 's / MP', 'peak MB / image', 'NIQE')
SCORES = 'PSNR/SSIM on the Y channel, no border crop'
PHOTO_SCORES = "NIQE (BasicSR's calculate_niqe, Y channel; lower is better), no ground truth"
FIGURES_BY_DEFAULT = 2
NAME = 'compare'


def add_arguments(parser):
    add_arch(parser, repeatable=True)
    add_options_file(parser, help='an options file whose network_g to compare', repeatable=True)
    parser.add_argument(
        '--weights',
        action='append',
        default=[],
        help='LABEL=W.pth: weights for the network labelled LABEL, or a new row; a zoo name '
        '(LABEL=NAME, or NAME alone, labelled NAME); repeatable')
    add_param_key(parser)
    add_zoo_dir(parser)
    parser.add_argument(
        '--data',
        required=True,
        help='paired test data (any PairedDerainDataset layout), or a folder of rainy photos without ground truth')
    add_layout(parser)
    parser.add_argument('--recipe', help='training options file shared by every network (with --train-iters)')
    parser.add_argument('--train-iters', type=int, help='train each network without weights for this many iterations')
    parser.add_argument('--size', default='481x321', help='WxH at which GMACs are counted. Default: 481x321')
    parser.add_argument(
        '--figure',
        help='comma-separated image names (stems) to draw; "none" for no figure. '
        f'Default: {FIGURES_BY_DEFAULT} images spread over the test set')
    add_tile(parser, help='restore in tiles of this many pixels, as derain --tile does')
    add_device(parser)
    add_numerics(parser)
    parser.add_argument('--out', default='comparison', help='output folder. Default: comparison')


def check_flags(args):
    """One-line errors for flags that do not fit together, before any work."""
    if not args.arch and not args.opt and not args.weights:
        raise OptionsError('name at least one network with --arch, -opt or --weights')
    if args.train_iters and not args.recipe:
        raise OptionsError('--train-iters needs --recipe (the shared training options file)')
    check_tile(args)
    parse_device(args.device)
    parse_size(args.size)
    if args.recipe:
        recipe = load_options(args.recipe)
        if not isinstance(recipe.get('train'), dict) or 'train' not in (recipe.get('datasets') or {}):
            raise OptionsError(f"{args.recipe}: --recipe needs a training options file (with 'train' and "
                               "'datasets:train'); this one has none")


def _unique(label, taken):
    if label not in taken:
        return label
    number = 2
    while f'{label}_{number}' in taken:
        number += 1
    return f'{label}_{number}'


def network_rows(args):
    """``[(label, network options or None, weights path or None)]`` from ``--arch``, ``-opt`` and
    ``--weights``; labels are unique, options None where the weights file names the network."""
    specs = [(parse_arch_spec(spec), '--arch') for spec in args.arch]
    specs += [(network_of(path), f"{path}: 'network_g'") for path in args.opt]
    rows = []
    for network_opt, where in specs:
        check_component(network_opt, ARCH_REGISTRY, 'arch', where=where)
        rows.append([_unique(network_opt['type'], {row[0] for row in rows}), network_opt, None])
    for item in args.weights:
        label, separator, path = item.partition('=')
        if not separator:
            if zoo.zoo_name(item) is None:
                raise OptionsError(f'--weights {item!r}: expected LABEL=PATH or a zoo name (basicsr zoo list)')
            label = path = item
        row = next((row for row in rows if row[0] == label), None)
        if row is None:
            rows.append([label, None, path])
        elif row[2] is not None:
            raise OptionsError(f'--weights {item!r}: {label} already has weights ({row[2]})')
        else:
            row[2] = path
    return [tuple(row) for row in rows]


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


def outputs_folder(out, label):
    """``OUT/outputs/LABEL``, the label made a safe folder name: no separators, no leading dot
    (a row labelled ``..`` wrote into OUT itself)."""
    return os.path.join(out, 'outputs', safe_file_name(label))


def image_name(path):
    """An image's name as ``--figure`` takes it: the rainy file's name without extension."""
    return os.path.splitext(os.path.basename(path))[0]


def measure(label, network_opt, weights_path, args, figure_names):
    """``(parameters, GMACs, ms, peak MB, PSNR, SSIM)`` of one network, measured in this process
    (``(..., NIQE, None)`` on photos without ground truth); the restored images named in
    ``figure_names`` go to ``OUT/outputs/LABEL/``.

    Run by ``compare_networks`` in a fresh process per network, so that no allocator cache of an
    earlier network hides this one's memory. GMACs are counted last for the same reason.
    """
    keep_freed_memory()  # as in the basicsr process that spawned this one
    load_plugins()
    device = torch.device(args.device)
    dataset = open_test_set(args.data, args.layout)
    if weights_path:
        net, network_opt = load_network(weights_path, network_opt, args.param_key, zoo_folder=args.zoo_dir)
    else:
        net = build_network(dict(network_opt))
    multiple = size_multiple(net)
    numerics = resolve_numerics(args, net, device, network_opt)
    folder = outputs_folder(args.out, label)
    paired = isinstance(dataset, PairedDerainDataset)
    scores = []

    def keep(item, result):
        if not paired and weights_path:
            scores.append(niqe(result, item['lq_path']))
        if image_name(item['lq_path']) in figure_names:
            os.makedirs(folder, exist_ok=True)
            write_image(os.path.join(folder, image_name(item['lq_path']) + '.png'), result)

    try:
        ms, peak, psnr, ssim = evaluate(
            numerics.runner,
            dataset,
            device,
            multiple=multiple,
            with_metrics=paired and weights_path is not None,
            on_output=keep,
            desc=label,
            autocast=numerics.autocast,
            memory_format=numerics.memory_format,
            tile=args.tile,
            tile_overlap=args.tile_overlap)
    except NotARestorerError as error:
        raise NotARestorerError(f'{label}: {error}') from error
    except (AssertionError, RuntimeError, ValueError) as error:  # the network refused an input (e.g. its size)
        if isinstance(error, UserError):
            raise
        raise OptionsError(f'{label}: the network failed on {args.data} ({type(error).__name__}: '
                           f'{str(error) or "assertion"}); it may need inputs of another size') from error
    width, height = parse_size(args.size)
    with torch.no_grad():
        gmacs = macs(net.float().to(device).eval(),
                     (3, padded_size(height, multiple), padded_size(width, multiple))) / 1e9
    quality = (psnr, ssim) if paired else (mean_or_none(scores), None)
    return (sum(p.numel() for p in net.parameters()), gmacs, ms, peak) + quality


def figure_names(args, dataset):
    """The image names (stems) to draw: ``--figure``, or a few spread over the dataset."""
    names = [image_name(pair.lq) for pair in dataset.pairs]
    if args.figure == 'none':
        return []
    if args.figure:
        chosen = [name.strip() for name in args.figure.split(',') if name.strip()]
        unknown = [name for name in chosen if name not in names]
        if unknown:
            raise OptionsError(f"--figure: no image named {', '.join(unknown)} in {args.data}")
        return chosen
    count = min(FIGURES_BY_DEFAULT, len(names))
    return [names[i * len(names) // count] for i in range(count)]


def rainy_row(dataset):
    """The table row of the rainy input itself: its PSNR/SSIM against the ground truth, or its NIQE."""
    first, second = input_scores(dataset)
    return [RAINY, '', '', '', ''] + ([f'{first:.3f}'] if second is None else [f'{first:.2f}', f'{second:.4f}'])


def draw_figures(args, dataset, names, labels):
    """One comparison figure per image in ``names``: rainy, each network in ``labels`` (read back from
    ``OUT/outputs/LABEL/``), and the ground truth where there is one; the paths written."""
    index = {image_name(pair.lq): i for i, pair in enumerate(dataset.pairs)}
    written = []
    for name in names:
        item = dataset[index[name]]
        rainy = tensor2img(item['lq'][None])
        paths = [(label, os.path.join(outputs_folder(args.out, label), name + '.png')) for label in labels]
        results = [(label, cv2.imread(path)) for label, path in paths if os.path.isfile(path)]
        target = os.path.join(args.out, f'figure_{name}.png')
        if isinstance(dataset, PairedDerainDataset):
            draw_paired_figure(target, rainy, results, tensor2img(item['gt'][None]))
        else:
            scores = {label: niqe(image, item['lq_path']) for label, image in [(RAINY, rainy)] + results}
            draw_photo_figure(target, rainy, results, scores)
        written.append(target)
    return written


def measured_apart(label, network_opt, path, args, names):
    """``measure(...)`` in a fresh process; a process that dies (the kernel's out-of-memory killer,
    a crash in native code) is one line naming the network, where a ``multiprocessing.Pool`` waits
    for its result for ever."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
        try:
            return pool.submit(measure, label, network_opt, path, args, names).result()
        except BrokenProcessPool as error:
            raise ResourceError(f'{label}: the process measuring it died before it finished (out of memory? a crash '
                                'in native code?); try a smaller --tile, or fewer or smaller images') from error


def check_weights(rows_spec, args):
    """Loads every row's weights once, so that a wrong file, key or network ends the command before
    anything is measured or written."""
    for _, network_opt, path in rows_spec:
        if path:
            load_network(path, network_opt, args.param_key, zoo_folder=args.zoo_dir)


def run(args):
    check_flags(args)
    rows_spec = network_rows(args)
    check_weights(rows_spec, args)
    os.makedirs(args.out, exist_ok=True)
    dataset = open_test_set(args.data, args.layout)
    paired = isinstance(dataset, PairedDerainDataset)
    mean_mp = None if paired else dataset.megapixels()
    names = figure_names(args, dataset)
    rows, with_quality = [rainy_row(dataset)], []
    for label, network_opt, path in rows_spec:
        path = path or (train(label, network_opt, args) if args.train_iters else None)
        params, gmacs, ms, peak, psnr, ssim = measured_apart(label, network_opt, path, args, names)
        if paired:
            quality = [f'{psnr:.2f}' if psnr is not None else '', f'{ssim:.4f}' if ssim is not None else '']
            speed = f'{ms:.1f}'
        else:
            quality, speed = [f'{psnr:.3f}' if psnr is not None else ''], f'{ms / 1e3 / mean_mp:.2f}'
        rows.append([label, f'{params / 1e6:.3f}', f'{gmacs:.2f}', speed, f'{peak:.1f}'] + quality)
        if psnr is not None:
            with_quality.append(label)
    columns = list(COLUMNS if paired else PHOTO_COLUMNS)
    columns[2] = f'GMACs ({args.size})'
    figures = draw_figures(args, dataset, names, labels=with_quality) if with_quality or not paired else []
    write_outputs(
        args.out,
        columns,
        rows,
        caption=f'{len(dataset)} images of {args.data}, {args.device}; each network '
        'measured in a fresh process, peak MB being the memory growth while restoring one image',
        figures=figures,
        scores=SCORES if paired else PHOTO_SCORES)


def write_outputs(out, columns, rows, caption, figures=(), scores=SCORES):
    """The table as CSV and Markdown (``scores`` says what its quality columns are), PSNR against
    GMACs where there is ground truth, and the names of what was written."""
    with open(os.path.join(out, 'comparison.csv'), 'w', newline='', encoding='utf-8') as f:
        csv.writer(f).writerows([columns] + rows)
    table = markdown_table(columns, rows)
    with open(os.path.join(out, 'comparison.md'), 'w', encoding='utf-8') as f:
        f.write(f'{table}\n\n{scores}; {caption}.\n')
    written = ['comparison.md', 'comparison.csv']
    if 'PSNR' in columns:
        points = [(row[0], float(row[2]), float(row[5])) for row in rows if row[2] and row[5]]
        draw_labelled_points(os.path.join(out, 'psnr_vs_gmacs.png'), points, columns[2], 'PSNR (dB, Y channel)')
        written.append('psnr_vs_gmacs.png')
    print(table)
    written += [os.path.basename(path) for path in figures]
    print(f"\n(written to {out}/{', '.join(written)})")
