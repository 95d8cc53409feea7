"""``basicsr zoo list`` and ``basicsr zoo get NAME...``: the published checkpoints by name.

Names work wherever weights do: ``derain --weights NAME``, ``compare --weights LABEL=NAME``,
``path.pretrain_network_g: zoo:NAME`` (which also supplies ``network_g`` when the options file
leaves it out). ``get`` downloads now (e.g. before going offline) into the zoo folder:
``--zoo-dir``, else ``$MH2F_ZOO_DIR``, else ``~/.cache/mh2f_plugin``.
"""
import argparse

from mh2f_plugin.weights import zoo


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='basicsr zoo', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='action', required=True)
    sub.add_parser('list', help='a table of every checkpoint')
    get = sub.add_parser('get', help='download, verify and convert checkpoints now')
    get.add_argument('names', nargs='+', metavar='NAME')
    get.add_argument('--zoo-dir', help='zoo folder. Default: $MH2F_ZOO_DIR, else ~/.cache/mh2f_plugin')
    return parser.parse_args(argv)


def arch_text(arch):
    options = ', '.join(f'{key}: {value}' for key, value in arch.items() if key != 'type')
    return arch['type'] + (f' ({options})' if options else '')


def published_text(published):
    return '; '.join(f"{dataset} {scores['psnr']:.2f}/{scores['ssim']:.3f}" for dataset, scores in published.items())


def catalogue_table():
    """The catalogue as a Markdown table."""
    lines = ['| name | network | trained on | published PSNR/SSIM | source |', '| --- | --- | --- | --- | --- |']
    for item in zoo.catalogue().values():
        source = item.url.split('/raw/')[0].replace(zoo.GITHUB, '')
        trained = item.trained_on + (f'; {item.note}' if item.note else '')
        lines.append(f'| `{item.name}` | {arch_text(item.arch)} | {trained} | {published_text(item.published)} | '
                     f'{source} |')
    return '\n'.join(lines)


def run_zoo(argv):
    args = parse_args(argv)
    if args.action == 'list':
        print(catalogue_table())
        return
    for name in args.names:
        zoo.entry(name)  # every name known before the first download
    for name in args.names:
        path, _ = zoo.fetch(name, args.zoo_dir)
        print(f'{name}: {path}')
