"""Export a network and its weights to ONNX, with its padding and clamping.

    basicsr export --weights W OUT.onnx [--arch 'NAME:{options}'] [--size WxH]

Takes what ``derain --weights`` takes: a zoo name, an official file, a BasicSR checkpoint. The
graph's input ``rainy`` and output ``derained`` are ``(1, 3, H, W)`` RGB in [0, 1], H and W dynamic
(fixed with ``--size`` for the networks whose graph depends on the size). The file is checked
with ONNX's checker and, where ONNX Runtime is installed, against PyTorch on a photograph.
"""
import cv2
import numpy as np
import os
import torch
from basicsr.utils import img2tensor
from skimage import data as skdata

from mh2f_plugin.cli.flags import add_arch, add_overwrite, add_param_key, add_zoo_dir, parse_size
from mh2f_plugin.cli.networks import checked_network
from mh2f_plugin.errors import NotARestorerError, OptionsError
from mh2f_plugin.models import engines, export
from mh2f_plugin.models.inference import size_multiple

NAME = 'export'
CHECK_SIZE = (256, 320)  # (H, W) of the photograph the export is checked on


def add_arguments(parser):
    parser.add_argument('output', help='the ONNX file to write (.onnx)')
    parser.add_argument('--weights', required=True, help='a zoo name, an official weights file or a BasicSR checkpoint')
    add_arch(parser, help="the network, over what the weights file says: NAME or 'NAME:{yaml options}'")
    parser.add_argument('--size', help='WxH: export a fixed image size (needed by NLEDN and NeRD-Rain)')
    add_param_key(parser)
    add_zoo_dir(parser)
    add_overwrite(parser, 'an OUTPUT')


def photograph():
    """A real photograph (scikit-image's astronaut), ``CHECK_SIZE``, as a ``(1, 3, H, W)`` RGB tensor."""
    rgb = cv2.resize(skdata.astronaut(), CHECK_SIZE[::-1], interpolation=cv2.INTER_AREA)
    return img2tensor(rgb.astype(np.float32) / 255, bgr2rgb=False, float32=True)[None]


def check_against_torch(net, path, size):
    """The largest difference, in 8-bit levels, between ONNX Runtime on ``path`` and PyTorch, on a
    photograph (of ``size`` ``(H, W)`` for fixed-size exports); None without ONNX Runtime."""
    if not engines.available(engines.ONNXRUNTIME):
        return None
    import onnxruntime
    image = photograph() if size is None else torch.nn.functional.interpolate(photograph(), size, mode='area')
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    ours = session.run(None, {export.INPUT: image.numpy()})[0]
    with torch.no_grad():
        reference = export.ImageProcedure(net, size_multiple(net))(image).numpy()
    return float(np.abs(np.round(ours * 255) - np.round(reference * 255)).max())


def run(args):
    if not args.output.lower().endswith('.onnx'):
        raise OptionsError(f'{args.output}: the ONNX file must end in .onnx')
    if os.path.exists(args.output) and not args.overwrite:
        raise OptionsError(f'{args.output}: already exists (pass --overwrite to replace it)')
    size = parse_size(args.size)[::-1] if args.size else None
    args.opt, args.arch_opt = None, None  # export names its network with --arch only
    net = checked_network(args)[0].float().eval()
    export.check_exportable(net, size)
    try:
        export.export_onnx(net, args.output, size=size)
    except NotARestorerError as error:
        raise NotARestorerError(f'{args.weights}: {error}') from error
    levels = check_against_torch(net, args.output, size)
    shape = f'{size[1]}x{size[0]}' if size else 'any size'
    print(f'{args.output}: {type(net).__name__} for {shape}, input {export.INPUT!r} and output {export.OUTPUT!r} '
          '(1, 3, H, W) RGB in [0, 1]; passed ONNX\'s checker')
    if levels is None:
        print('not run: ONNX Runtime is not installed (the onnx extra)')
    elif levels > 1:
        raise export.ExportError(f'{args.output}: ONNX Runtime differs from PyTorch by {levels:.0f} levels on a '
                                 'photograph; the export is not usable')
    else:
        print(f'ONNX Runtime on a photograph ({CHECK_SIZE[1]}x{CHECK_SIZE[0]}): at most {levels:.0f} level (of 255) '
              'from PyTorch')
