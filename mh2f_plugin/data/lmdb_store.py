"""The on-disk form of a paired dataset converted to LMDB, as ``basicsr lmdb`` writes it.

``OUT/lq.lmdb`` and ``OUT/gt.lmdb`` are BasicSR LMDBs (``data.mdb``, ``lock.mdb`` and
``meta_info.txt`` with ``key (h,w,c) compression_level`` lines, values PNG bytes); ``OUT/pairs.txt``
holds one ``lq_key gt_key`` line per pair, so that a clean image shared by many rainy ones
(Rain1400) is stored once. Conversion writes ``OUT.partial`` and renames it to ``OUT`` when
complete, so an ``OUT`` that exists is complete.
"""
import os

from mh2f_plugin.data.layouts import LayoutError, Pair

PAIRS_FILE = 'pairs.txt'
META_FILE = 'meta_info.txt'
DATABASES = ('lq', 'gt')
PARTIAL_SUFFIX = '.partial'


def database_path(root, name):
    return os.path.join(root, f'{name}.lmdb')


def read_meta_info(db_path):
    """``{key: (h, w, c)}`` from ``db_path/meta_info.txt``."""
    meta_path = os.path.join(db_path, META_FILE)
    entries = {}
    with open(meta_path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise LayoutError(f'{meta_path}:{number}: expected "key (h,w,c) compression_level", got {line.strip()!r}')
            entries[fields[0]] = tuple(int(v) for v in fields[1].strip('()').split(','))
    return entries


def check_complete(root):
    """Raises ``LayoutError`` unless ``root`` holds both databases with their meta_info files."""
    if not os.path.isdir(root):
        hint = ' (an interrupted conversion left ' + root + PARTIAL_SUFFIX + '; rerun basicsr lmdb to finish it)' \
            if os.path.isdir(root + PARTIAL_SUFFIX) else ''
        raise LayoutError(f'{root}: LMDB dataset not found{hint}')
    for name in DATABASES:
        meta = os.path.join(database_path(root, name), META_FILE)
        for required in (os.path.join(database_path(root, name), 'data.mdb'), meta):
            if not os.path.isfile(required):
                raise LayoutError(f'{root}: not a complete LMDB dataset: {required} is missing')


def read_pairs(root):
    """The pairs of an LMDB dataset as ``Pair(lq_key, gt_key)``.

    Without ``pairs.txt`` (BasicSR's own layout) the two databases must hold identical keys.
    Every key must be listed in its database's ``meta_info.txt``.
    """
    check_complete(root)
    lq_meta, gt_meta = (read_meta_info(database_path(root, name)) for name in DATABASES)
    pairs_path = os.path.join(root, PAIRS_FILE)
    if os.path.isfile(pairs_path):
        with open(pairs_path, encoding='utf-8') as f:
            pairs = [Pair(*line.split()) for line in f if line.strip()]
    elif lq_meta.keys() == gt_meta.keys():
        pairs = [Pair(key, key) for key in sorted(lq_meta)]
    else:
        raise LayoutError(f'{root}: no {PAIRS_FILE}, and the keys of lq.lmdb and gt.lmdb differ')
    for pair in pairs:
        for key, meta, name in ((pair.lq, lq_meta, 'lq'), (pair.gt, gt_meta, 'gt')):
            if key not in meta:
                raise LayoutError(f'{root}: key {key!r} is not in {os.path.join(database_path(root, name), META_FILE)}')
    if not pairs:
        raise LayoutError(f'{root}: the LMDB dataset holds no pairs')
    return pairs
