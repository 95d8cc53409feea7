"""Convert a deraining dataset to LMDB, or check one.

    basicsr lmdb SRC OUT
    basicsr lmdb --verify OUT

OUT holds OUT/lq.lmdb, OUT/gt.lmdb (BasicSR's format) and OUT/pairs.txt; see docs/datasets.md.
"""
import os

from mh2f_plugin.cli.flags import add_layout, add_overwrite
from mh2f_plugin.data import lmdb_store
from mh2f_plugin.data.layouts import LAYOUT_NAMES, find_pairs
from mh2f_plugin.errors import OptionsError

NAME = 'lmdb'


def add_arguments(parser):
    parser.add_argument('src', nargs='?', help='the dataset folder (any layout PairedDerainDataset reads)')
    parser.add_argument('out', help='the LMDB dataset to write (OUT/lq.lmdb, OUT/gt.lmdb), or to check')
    parser.add_argument('--verify', action='store_true', help='decode and check every entry of OUT')
    add_layout(parser, choices=('auto', ) + LAYOUT_NAMES)
    parser.add_argument('--list-file', help='SPA-Data list file (layout spa_list)')
    parser.add_argument('--allow-missing', action='store_true', help='skip list-file lines whose files are missing')
    parser.add_argument('--lq-folder', help='layout regex: the rainy folder')
    parser.add_argument('--gt-folder', help='layout regex: the clean folder')
    parser.add_argument('--pattern', help='layout regex: full match on the rainy stem')
    parser.add_argument('--replacement', default=r'\1', help=r'layout regex: the clean stem. Default: \1')
    parser.add_argument('--rainy-half', choices=('left', 'right'), help='layout side_by_side')
    parser.add_argument(
        '--basicsr-compatible',
        action='store_true',
        help='identical keys in both databases (clean images repeated), '
        "for BasicSR's PairedImageDataset")
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='encoding processes. Default: all cores')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), help='PNG level. Default: 1')
    add_overwrite(parser, 'an OUT')


def run(args):
    if args.verify:
        problems = lmdb_store.verify_lmdb(args.out)
        for problem in problems:
            print(problem)
        if problems:
            raise OptionsError(f'{args.out}: {len(problems)} problem(s) found')
        print(f'{args.out}: every entry decodes and matches meta_info.txt and the pairing')
        return
    if args.src is None:
        raise OptionsError('SRC and OUT are required (or --verify OUT)')
    if args.layout == 'side_by_side' and not args.rainy_half:
        raise OptionsError('layout side_by_side needs --rainy-half left or right')
    layout, pairs, missing = find_pairs(
        args.src,
        args.layout,
        list_file=args.list_file,
        allow_missing=args.allow_missing,
        lq_folder=args.lq_folder,
        gt_folder=args.gt_folder,
        pattern=args.pattern,
        replacement=args.replacement)
    if missing:
        print(f'skipped {len(missing)} listed pair(s) with missing files, e.g. {missing[0]}')
    encoded = lmdb_store.write_lmdb(
        args.src,
        args.out,
        pairs,
        layout=layout,
        rainy_half=args.rainy_half,
        basicsr_compatible=args.basicsr_compatible,
        workers=args.workers,
        compress_level=args.compress_level,
        overwrite=args.overwrite)
    print(f'{args.out}: {len(pairs)} pairs of layout {layout} ({encoded} images encoded by this run)')
