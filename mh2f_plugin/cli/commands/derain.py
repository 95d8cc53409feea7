"""Derain photos of any size, without ground truth.

    basicsr derain INPUT OUTPUT --weights W.pth [--arch 'NAME:{options}' | -opt TRAIN.yml]

Results are PNGs named after the inputs, with each input's bit depth (8 or 16), gray or colour,
and alpha channel; photos are turned upright by their EXIF orientation first. Nothing is
overwritten or written into the input folder unless asked, every write is checked and atomic.
"""
import numpy as np
import os
import torch
from basicsr.utils import img2tensor, tensor2img
from tqdm import tqdm

from mh2f_plugin.cli.flags import (DeprecatedAlias, add_arch, add_device, add_numerics, add_options_file, add_overwrite,
                                   add_param_key, add_tile, add_zoo_dir, check_tile, parse_device, resolve_numerics)
from mh2f_plugin.cli.networks import checked_network
from mh2f_plugin.data.image_io import decode_raw, from_float_bgr, read_bytes, to_float_bgr, write_image
from mh2f_plugin.data.layouts import IMAGE_EXTENSIONS, image_files
from mh2f_plugin.errors import NotARestorerError, OptionsError
from mh2f_plugin.models.inference import restore, size_multiple

NAME = 'derain'
SIXTEEN_BIT_EXTENSIONS = ('.png', '.tif', '.tiff')


def add_arguments(parser):
    parser.add_argument('input', help='an image, or a folder of images')
    parser.add_argument('output', help='a folder (or, for one input image, a file name ending in .png/.jpg)')
    parser.add_argument(
        '--weights',
        required=True,
        help='a BasicSR checkpoint (params or params_ema), an official one (see convert-weights), '
        'or a zoo name (basicsr zoo list)')
    add_zoo_dir(parser)
    add_options_file(parser, help='training options file whose network_g describes the network')
    add_arch(
        parser,
        help="the network (without -opt): NAME or 'NAME:{yaml options}'. Default: the network the "
        'weights file names (converted and official files do), else MH2FNet')
    parser.add_argument(
        '--arch-opt',
        action=DeprecatedAlias,
        deprecated=('--arch-opt', ),
        instead="--arch 'NAME:{options}'",
        help="deprecated: the arch's options as YAML; write --arch 'NAME:{options}'")
    add_param_key(parser)
    add_tile(parser)
    parser.add_argument(
        '--pad-multiple', type=int, help='default: what the network needs (size_multiple, window_size, or 1)')
    parser.add_argument('--self-ensemble', action='store_true', help='average the 8 flips/transposes')
    parser.add_argument(
        '--side-by-side', action='store_true', help='also write NAME_side_by_side.png (rainy | derained)')
    parser.add_argument(
        '--to-8-bit',
        action='store_true',
        help='scale 16-bit results to 8 bits, for an OUTPUT in an 8-bit format (.jpg, .bmp, .webp)')
    add_numerics(parser)
    add_device(parser)
    add_overwrite(parser, 'a result')
    parser.add_argument(
        '--output-inside-input',
        action='store_true',
        help='allow OUTPUT inside the INPUT folder (inputs are never overwritten)')


def input_files(path):
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = [os.path.join(path, name) for name in image_files(path)]
        if files:
            return files
        raise OptionsError(f'{path}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    raise OptionsError(f'{path}: no such file or folder')


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)


def output_plan(args, files):
    """``[(source, target, side-by-side target or None)]``: each input's result in OUTPUT (PNG, the
    input's stem; or OUTPUT itself for one image and a file name), and its ``_side_by_side.png``
    beside it with ``--side-by-side``. Refuses OUTPUT inside INPUT (unless
    ``--output-inside-input``), two files with one name, a target that is an input, and existing
    targets (unless ``--overwrite``), before anything is written."""
    single = len(files) == 1 and os.path.isfile(args.input)
    extension = os.path.splitext(args.output)[1].lower()
    if single and extension in IMAGE_EXTENSIONS:
        results = [(files[0], args.output)]
    else:
        if single and extension and not os.path.isdir(args.output):
            raise OptionsError(f'{args.output}: derain writes {", ".join(IMAGE_EXTENSIONS)}, not {extension}; '
                               'name one of those, or a folder (without an extension)')
        if os.path.isfile(args.output):
            raise OptionsError(f'{args.output}: is a file; OUTPUT must be a folder (or, for one image, an image name)')
        if os.path.isdir(args.input) and _inside(args.output, args.input) and not args.output_inside_input:
            raise OptionsError(f'{args.output}: is inside the input folder {args.input}; choose another OUTPUT '
                               '(or pass --output-inside-input)')
        results = [(path, os.path.join(args.output,
                                       os.path.splitext(os.path.basename(path))[0] + '.png')) for path in files]
    plan = [(source, target, f'{os.path.splitext(target)[0]}_side_by_side.png' if args.side_by_side else None)
            for source, target in results]
    written, inputs = {}, {os.path.realpath(path) for path in files}
    for source, *targets in plan:
        for target in filter(None, targets):
            if os.path.realpath(target) in written:
                raise OptionsError(f'{written[os.path.realpath(target)]} and {source} would both be written to '
                                   f'{target}; rename one')
            written[os.path.realpath(target)] = source
            if os.path.realpath(target) in inputs:
                raise OptionsError(f'{target}: is an input image; it would be overwritten by a result')
            if os.path.lexists(target) and not args.overwrite:
                raise OptionsError(f'{target}: already exists (pass --overwrite to replace it)')
    return plan


def check_flags(args):
    """One-line errors for numeric flags and the device, before any work."""
    check_tile(args)
    if args.pad_multiple is not None and args.pad_multiple <= 0:
        raise OptionsError(f'--pad-multiple must be a positive integer, got {args.pad_multiple}')
    return parse_device(args.device)


def run(args):
    device = check_flags(args)
    files = input_files(args.input)
    plan = output_plan(args, files)
    net, network_opt = checked_network(args)
    multiple = args.pad_multiple or size_multiple(net)
    if args.tile is not None and args.tile < multiple:
        raise OptionsError(f'--tile {args.tile}: smaller than the {multiple} pixels this network needs')
    numerics = resolve_numerics(args, net, device, network_opt)
    for source, target, side_by_side in tqdm(plan, unit='image', desc='derain'):
        raw = decode_raw(read_bytes(source), source)
        lq = img2tensor(to_float_bgr(raw, source), bgr2rgb=True, float32=True)[None]
        with torch.no_grad(), numerics.autocast:
            try:
                out = restore(
                    numerics.runner,
                    lq.to(device, memory_format=numerics.memory_format),
                    args.tile,
                    tile_overlap=args.tile_overlap,
                    multiple=multiple,
                    ensemble=args.self_ensemble).float()
            except NotARestorerError as error:
                raise NotARestorerError(f'{args.weights}: {error}') from error
        result = from_float_bgr(tensor2img(out.cpu(), out_type=np.float32, min_max=(0, 1)), raw)
        if result.dtype == np.uint16 and not target.lower().endswith(SIXTEEN_BIT_EXTENSIONS):
            if not args.to_8_bit:
                raise OptionsError(f'{target}: {os.path.splitext(target)[1]} holds 8 bits, and {source} is a '
                                   '16-bit image; pass --to-8-bit to scale the result, or write .png or .tif')
            result, raw = (np.round(image / 257).astype(np.uint8) for image in (result, raw))
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        write_image(target, result)
        if side_by_side:
            write_image(side_by_side, np.concatenate([raw, result], 1))
    print(f'derained {len(plan)} image(s) into {args.output}')
