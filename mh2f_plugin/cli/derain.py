"""``basicsr derain INPUT OUTPUT --weights W.pth``: derain real photos of any size, no ground truth."""
import argparse
import os

import cv2
import numpy as np
import torch
import yaml
from basicsr.utils import img2tensor, tensor2img
from tqdm import tqdm

from mh2f_plugin.cli.options import OptionsError, load_options
from mh2f_plugin.data.image_io import ImageReadError, read_image
from mh2f_plugin.data.layouts import IMAGE_EXTENSIONS, image_files
from mh2f_plugin.models.derain_model import AMP_DTYPES
from mh2f_plugin.models.inference import restore, size_multiple
from mh2f_plugin.weights.checkpoint import PARAM_KEYS
from mh2f_plugin.weights.loader import load_network


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='basicsr derain', description=__doc__)
    parser.add_argument('input', help='an image, or a folder of images')
    parser.add_argument('output', help='a folder (or, for one input image, a file name ending in .png/.jpg)')
    parser.add_argument('--weights', required=True,
                        help='a BasicSR checkpoint (params or params_ema), an official one (see convert-weights), '
                        'or a zoo name (basicsr zoo list)')
    parser.add_argument('--zoo-dir', help='zoo folder. Default: $MH2F_ZOO_DIR, else ~/.cache/mh2f_plugin')
    parser.add_argument('-opt', help='training options file whose network_g describes the network')
    parser.add_argument('--arch', help='registered arch name (without -opt). Default: the network the weights '
                        'file names (converted and official files do), else MH2FNet')
    parser.add_argument('--arch-opt', default='{}', help="the arch's options as YAML, e.g. '{num_feat: 32}'")
    parser.add_argument('--param-key', choices=PARAM_KEYS, help='default: params_ema if present, else params')
    parser.add_argument('--tile', type=int, help='tile size in pixels for images too large for memory')
    parser.add_argument('--tile-overlap', type=int, default=32, help='pixels shared by neighbouring tiles')
    parser.add_argument('--pad-multiple', type=int,
                        help='default: what the network needs (size_multiple, window_size, or 1)')
    parser.add_argument('--self-ensemble', action='store_true', help='average the 8 flips/transposes')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write NAME_side_by_side.png (rainy | derained)')
    parser.add_argument('--amp', choices=['bf16', 'fp16'], help='autocast dtype (default: float32)')
    parser.add_argument('--channels-last', action='store_true', help='channels-last memory format (faster on CPUs)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def network_options(args):
    """The network the user named (``-opt``, or ``--arch`` / ``--arch-opt``), or None."""
    if args.opt:
        opt = load_options(args.opt)
        if 'network_g' not in opt:
            raise OptionsError(f"{args.opt}: missing key 'network_g'")
        return dict(opt['network_g'])
    try:
        arch_opt = yaml.safe_load(args.arch_opt) or {}
    except yaml.YAMLError as error:
        raise OptionsError(f'--arch-opt {args.arch_opt!r}: not valid YAML') from error
    if not isinstance(arch_opt, dict):
        raise OptionsError(f'--arch-opt must be a YAML mapping, got {args.arch_opt!r}')
    if args.arch:
        return {'type': args.arch, **arch_opt}
    return arch_opt or None


def input_files(path):
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = [os.path.join(path, name) for name in image_files(path)]
        if files:
            return files
        raise OptionsError(f'{path}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    raise OptionsError(f'{path}: no such file or folder')


def output_path(output, source, single):
    if single and output.lower().endswith(IMAGE_EXTENSIONS):
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        return output
    os.makedirs(output, exist_ok=True)
    return os.path.join(output, os.path.splitext(os.path.basename(source))[0] + '.png')


def derain(argv):
    args = parse_args(argv)
    files = input_files(args.input)
    net, _ = load_network(args.weights, network_options(args), args.param_key, default_opt={'type': 'MH2FNet'},
                          zoo_folder=args.zoo_dir)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(device, memory_format=memory_format).eval()
    multiple = args.pad_multiple or size_multiple(net)
    autocast = torch.autocast(device.type, dtype=AMP_DTYPES[args.amp], enabled=args.amp is not None)
    for path in tqdm(files, unit='image', desc='derain'):
        try:
            rainy = read_image(path)
        except ImageReadError as error:
            raise OptionsError(str(error)) from error
        lq = img2tensor(rainy, bgr2rgb=True, float32=True)[None].to(device, memory_format=memory_format)
        with torch.no_grad(), autocast:
            out = restore(net, lq, args.tile, args.tile_overlap, multiple, args.self_ensemble).float()
        derained = tensor2img(out.cpu())
        target = output_path(args.output, path, len(files) == 1)
        cv2.imwrite(target, derained)
        if args.side_by_side:
            rainy_8bit = np.round(rainy * 255).astype(np.uint8)
            stem = os.path.splitext(target)[0]
            cv2.imwrite(f'{stem}_side_by_side.png', np.concatenate([rainy_8bit, derained], 1))
    print(f'derained {len(files)} image(s) into {args.output}')
