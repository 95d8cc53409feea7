"""Published checkpoints by name: list them, or download, verify and convert them now.

    basicsr zoo list
    basicsr zoo get NAME...
    basicsr zoo get NAME --file PATH     a file its authors publish on a cloud drive, downloaded by hand

Names work wherever weights do: ``derain --weights NAME``, ``compare --weights LABEL=NAME``,
``path.pretrain_network_g: zoo:NAME`` (which also supplies ``network_g`` when the options file
leaves it out). ``get`` downloads now (e.g. before going offline) into the zoo folder:
``--zoo-dir``, else ``$MH2F_ZOO_DIR``, else ``~/.cache/mh2f_plugin``.
"""
from mh2f_plugin.cli.flags import add_zoo_dir
from mh2f_plugin.errors import OptionsError
from mh2f_plugin.utils.markdown import markdown_table
from mh2f_plugin.weights import zoo

NAME = 'zoo'


def add_arguments(parser):
    sub = parser.add_subparsers(dest='action', required=True, metavar='ACTION')
    sub.add_parser('list', help='a table of every checkpoint')
    get = sub.add_parser('get', help='download, verify and convert checkpoints now')
    get.add_argument('names', nargs='+', metavar='NAME')
    get.add_argument('--file', help='for one entry that is downloaded by hand: the file you downloaded')
    add_zoo_dir(get)


def arch_text(arch):
    options = ', '.join(f'{key}: {value}' for key, value in arch.items() if key != 'type')
    return arch['type'] + (f' ({options})' if options else '')


def published_text(published):
    """``Rain100H 29.46/0.899; ...``: PSNR, and SSIM where it was published."""
    return '; '.join(f"{dataset} {scores['psnr']:.2f}" + (f"/{scores['ssim']:g}" if 'ssim' in scores else '')
                     for dataset, scores in published.items())


def catalogue_table():
    """The catalogue as a Markdown table."""
    rows = []
    for item in zoo.catalogue().values():
        source = item.source + (f' (by hand: {item.file})' if item.by_hand else '')
        trained = item.trained_on + (f'; {item.note}' if item.note else '')
        rows.append([f'`{item.name}`', arch_text(item.arch), trained, published_text(item.published), source])
    return markdown_table(('name', 'network', 'trained on', 'published PSNR/SSIM', 'source'), rows)


def run(args):
    if args.action == 'list':
        print(catalogue_table())
        return
    if args.file and len(args.names) != 1:
        raise OptionsError(f'--file goes with one name, got {len(args.names)}')
    for name in args.names:
        zoo.entry(name)  # every name known before the first download
    for name in args.names:
        path, _ = zoo.fetch(name, args.zoo_dir, supplied=args.file)
        print(f'{name}: {path}')
