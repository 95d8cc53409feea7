"""A local web page to derain a photo with any models and compare them by eye (the web extra).

    basicsr web [--folder DIR] [--experiments DIR] [--host 127.0.0.1] [--port 7860]

The page takes a photo (upload, drag, or an example), runs zoo models, a checkpoint (typed: a
path inside a --folder; or uploaded) or an experiment's latest model, and shows each result
beside the input with NIQE and time, a download, and a figure zoomed where they differ most.
Numerics, tiling and the pixel limit are derain's. One network runs at a time; users queue.
"""
import os
import shutil
import sys
import tempfile

from mh2f_plugin.cli.flags import (add_device, add_numerics, add_tile, add_zoo_dir, check_tile, parse_device,
                                   resolve_numerics)
from mh2f_plugin.errors import OptionsError

NAME = 'web'
EXTRA = "the web extra: pip install 'mh2f_plugin[web]' (Gradio)"
LOOPBACK = ('127.0.0.1', 'localhost', '::1')


def add_arguments(parser):
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on. Default: 127.0.0.1 (this machine)')
    parser.add_argument('--port', type=int, default=7860, help='port to listen on. Default: 7860')
    parser.add_argument(
        '--folder',
        action='append',
        default=[],
        help='a folder whose checkpoints may be typed into the page (paths outside are refused); repeatable')
    parser.add_argument(
        '--experiments',
        action='append',
        help="a folder of basicsr train experiments whose latest models the page offers; repeatable. "
        'Default: ./experiments')
    parser.add_argument('--max-upload-mb', type=int, default=50, help='largest upload in MB. Default: 50')
    add_zoo_dir(parser)
    add_tile(parser)
    add_numerics(parser)
    add_device(parser)


def check_flags(args):
    check_tile(args)
    device = parse_device(args.device)
    for folder in args.folder:
        if not os.path.isdir(folder):
            raise OptionsError(f'{folder}: --folder names no folder')
    if args.max_upload_mb <= 0:
        raise OptionsError(f'--max-upload-mb must be positive, got {args.max_upload_mb}')
    if not 0 < args.port < 65536:
        raise OptionsError(f'--port must be 1 to 65535, got {args.port}')
    return device


def run(args):
    device = check_flags(args)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # the page calls no server but its own
    try:
        import gradio  # noqa: F401 (only to name the extra when it is missing)
    except ImportError as error:
        raise OptionsError(f'basicsr web needs {EXTRA}') from error
    from mh2f_plugin.web.examples import example_photos
    from mh2f_plugin.web.jobs import Restorer, experiment_choices
    from mh2f_plugin.web.page import Sessions, build_page

    args.folder = [os.path.abspath(folder) for folder in args.folder]
    experiments = experiment_choices(args.experiments or ['experiments'])
    root = tempfile.mkdtemp(prefix='mh2f_web_')
    restorer = Restorer(
        lambda net, network_opt: resolve_numerics(args, net, device, network_opt, verbose=False),
        device,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        zoo_folder=args.zoo_dir)
    page = build_page(args, restorer, Sessions(root), example_photos(os.path.join(root, 'examples')), experiments)
    if args.host not in LOOPBACK:
        print(
            f'basicsr web: warning: listening on {args.host}: anyone who can reach this machine can run models '
            'on it and read the checkpoints in ' + (', '.join(args.folder) or 'the zoo'),
            file=sys.stderr)
    try:
        page.launch(server_name=args.host, server_port=args.port, max_file_size=f'{args.max_upload_mb}mb')
    except OSError as error:
        raise OptionsError(f'--host {args.host} --port {args.port}: cannot listen there ({error})') from error
    finally:
        shutil.rmtree(root, ignore_errors=True)
