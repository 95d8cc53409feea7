"""The on-disk form of a paired dataset converted to LMDB, as ``basicsr lmdb`` writes it.

``OUT/lq.lmdb`` and ``OUT/gt.lmdb`` are BasicSR LMDBs: ``data.mdb``, ``lock.mdb`` and
``meta_info.txt`` with ``key.png (h,w,c) compression_level`` lines as BasicSR writes them (its
reader keeps a key up to the first dot), values PNG bytes. ``OUT/pairs.txt`` holds one
``lq_key gt_key`` line per pair, so that a clean image shared by many rainy ones (Rain1400) is
stored once. Keys are the images' paths relative to the dataset root, without extension, blanks
and dots made '_'. Conversion writes ``OUT.partial`` and renames it to ``OUT`` when complete, so
an ``OUT`` that exists is complete; a rerun of an interrupted conversion keeps what was committed.
"""
import contextlib
import json
import os
import re
import shutil
import struct
from dataclasses import dataclass
from multiprocessing import Pool

import cv2
import lmdb
from PIL import Image
from tqdm import tqdm

from mh2f_plugin.data.image_io import ImageReadError, decode_raw, read_bytes, to_float_bgr
from mh2f_plugin.data.layouts import LayoutError, Pair, read_records

PAIRS_FILE = 'pairs.txt'
META_FILE = 'meta_info.txt'
DATABASES = ('lq', 'gt')
PARTIAL_SUFFIX = '.partial'
SETTINGS_FILE = 'conversion.json'
PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels
MAP_SIZE_MARGIN = 64 * 2**20
COMMIT_EVERY = 64


def database_path(root, name):
    return os.path.join(root, f'{name}.lmdb')


def read_meta_info(db_path):
    """``{key: (h, w, c)}`` from ``db_path/meta_info.txt``."""
    meta_path = os.path.join(db_path, META_FILE)
    return {fields[0].removesuffix('.png'): tuple(int(v) for v in fields[1].strip('()').split(','))
            for _, fields in read_records(meta_path, 'key (h,w,c) compression_level')}


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
        pairs = [Pair(*fields) for _, fields in read_records(pairs_path, 'lq_key gt_key')]
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


@dataclass(frozen=True)
class Entry:
    """One image to store: ``database`` ('lq' or 'gt'), its key, its file, and for side-by-side
    images the half to keep ('left' or 'right'; None for the whole image)."""
    database: str
    key: str
    path: str
    half: str = None


def image_key(root, path):
    """The key of ``path``: its path relative to ``root`` without extension, blanks and dots as '_'."""
    return re.sub(r'[\s.]', '_', os.path.splitext(os.path.relpath(path, root))[0])


def plan_entries(root, pairs, layout, rainy_half=None, basicsr_compatible=False):
    """The images to store and the ``(lq_key, gt_key)`` pairs.

    Each clean image is stored once unless ``basicsr_compatible``, where the clean database
    repeats it under every rainy key so BasicSR's own ``PairedImageDataset`` can read it.
    Side-by-side images are split into their halves here.
    """
    entries, pair_keys, owners = {}, [], {}

    def add(database, key, path, half=None):
        owner = owners.setdefault((database, key), (path, half))
        if owner != (path, half):
            raise LayoutError(f'{root}: {owner[0]} and {path} would share the {database} key {key!r}')
        entries.setdefault((database, key), Entry(database, key, path, half))

    clean_half = {'left': 'right', 'right': 'left'}.get(rainy_half)
    for pair in pairs:
        lq_key = image_key(root, pair.lq)
        gt_key = lq_key if basicsr_compatible or layout == 'side_by_side' else image_key(root, pair.gt)
        add('lq', lq_key, pair.lq, rainy_half if layout == 'side_by_side' else None)
        add('gt', gt_key, pair.gt, clean_half if layout == 'side_by_side' else None)
        pair_keys.append((lq_key, gt_key))
    return list(entries.values()), pair_keys


def encode_entry(entry, compress_level):
    """Worker: the entry's image (or half) as lossless PNG bytes, 8 or 16 bits kept."""
    img = decode_raw(read_bytes(entry.path), entry.path)
    if entry.half:
        half = img.shape[1] // 2
        img = img[:, :half] if entry.half == 'left' else img[:, img.shape[1] - half:]
    ok, buffer = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise ImageReadError(f'{entry.path}: cannot be encoded as PNG')
    return entry.database, entry.key, buffer.tobytes()


def _encode(job):
    return encode_entry(*job)


def size_bound(path):
    """An upper bound of the PNG size of an image, from its header: raw pixels at 2 bytes per
    sample (PIL reports 16-bit colour as 8-bit) plus PNG overhead."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            samples = len(img.getbands())
    except OSError as error:
        raise ImageReadError(f'{path}: not a readable image ({error})') from error
    return int(width * height * samples * 2 * 1.01) + height + 4096


def png_shape(data):
    """``(h, w, c)`` read from a PNG's header."""
    width, height, _, colour_type = struct.unpack('>IIBB', data[16:26])
    return height, width, PNG_CHANNELS[colour_type]


def _open_databases(work, entries):
    """Opens both databases with map sizes bounding everything they will hold (every entry,
    including clean images repeated by ``--basicsr-compatible``), each file's header read once."""
    bounds = {path: size_bound(path) for path in {entry.path for entry in entries}}
    sizes = {name: MAP_SIZE_MARGIN for name in DATABASES}
    for entry in entries:
        sizes[entry.database] += bounds[entry.path]
    return {name: lmdb.open(database_path(work, name), map_size=sizes[name]) for name in DATABASES}


def write_lmdb(root, out, pairs, layout, rainy_half=None, basicsr_compatible=False, workers=1, compress_level=1,
               overwrite=False, progress=True):
    """Converts ``pairs`` of the dataset at ``root`` into the LMDB dataset ``out``; returns the
    number of images encoded by this run (a rerun after an interruption encodes only the rest)."""
    if os.path.exists(out) and not overwrite:
        raise LayoutError(f'{out}: already exists; pass --overwrite to replace it')
    entries, pair_keys = plan_entries(root, pairs, layout, rainy_half, basicsr_compatible)
    work = out.rstrip(os.sep) + PARTIAL_SUFFIX
    settings = {'source': os.path.abspath(root), 'layout': layout, 'rainy_half': rainy_half,
                'basicsr_compatible': basicsr_compatible, 'compress_level': compress_level}
    settings_path = os.path.join(work, SETTINGS_FILE)
    if os.path.isdir(work):
        with open(settings_path, encoding='utf-8') as f:
            if json.load(f) != settings:
                raise LayoutError(f'{work}: an interrupted conversion with other settings is there; remove it first')
    else:
        os.makedirs(work)
        with open(settings_path, 'w', encoding='utf-8') as f:
            json.dump(settings, f)
    envs = _open_databases(work, entries)
    todo = []
    for entry in entries:
        with envs[entry.database].begin() as txn:
            if txn.get(entry.key.encode()) is None:
                todo.append((entry, compress_level))
    _store(envs, todo, workers, progress)
    for name, env in envs.items():
        _write_meta_info(env, [e.key for e in entries if e.database == name], database_path(work, name),
                         compress_level)
        env.close()
    with open(os.path.join(work, PAIRS_FILE), 'w', encoding='utf-8') as f:
        f.writelines(f'{lq} {gt}\n' for lq, gt in pair_keys)
    os.remove(settings_path)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(work, out)
    return len(todo)


def _store(envs, todo, workers, progress):
    """Encodes ``todo`` in ``workers`` processes and commits every ``COMMIT_EVERY`` images."""
    txns = {name: env.begin(write=True) for name, env in envs.items()}
    with Pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        results = pool.imap(_encode, todo, chunksize=4) if pool else map(_encode, todo)
        for done, (database, key, data) in enumerate(tqdm(results, total=len(todo), unit='image',
                                                          disable=not progress, desc='lmdb'), 1):
            txns[database].put(key.encode(), data)
            if done % COMMIT_EVERY == 0:
                for name in txns:
                    txns[name].commit()
                    txns[name] = envs[name].begin(write=True)
    for txn in txns.values():
        txn.commit()


def _write_meta_info(env, keys, db_path, compress_level):
    with env.begin() as txn, open(os.path.join(db_path, META_FILE), 'w', encoding='utf-8') as f:
        for key in keys:
            h, w, c = png_shape(txn.get(key.encode()))
            f.write(f'{key}.png ({h},{w},{c}) {compress_level}\n')


def verify_lmdb(root, progress=True):
    """Decodes every stored image and checks it against ``meta_info.txt`` and the pairing.

    Returns a list of problems, each naming the database and key; empty when all is well.
    """
    pairs = read_pairs(root)
    problems, shapes = [], {}
    for name in DATABASES:
        db_path = database_path(root, name)
        env = lmdb.open(db_path, readonly=True, lock=False, readahead=False)
        with env.begin() as txn:
            for key, shape in tqdm(read_meta_info(db_path).items(), unit='image', desc=f'verify {name}',
                                   disable=not progress):
                data = txn.get(key.encode())
                if data is None:
                    problems.append(f'{name}.lmdb:{key}: listed in meta_info.txt but not stored')
                    continue
                try:
                    img = decode_raw(bytes(data), f'{name}.lmdb:{key}')
                    to_float_bgr(img, f'{name}.lmdb:{key}')
                except ImageReadError as error:
                    problems.append(str(error))
                    continue
                stored = img.shape[:2] + ((img.shape[2] if img.ndim == 3 else 1), )
                if stored != shape:
                    problems.append(f'{name}.lmdb:{key}: stored image is {stored}, meta_info.txt says {shape}')
                shapes[name, key] = stored[:2]
        env.close()
    for pair in pairs:
        lq, gt = shapes.get(('lq', pair.lq)), shapes.get(('gt', pair.gt))
        if lq and gt and lq != gt:
            problems.append(f'pair {pair.lq} / {pair.gt}: sizes differ ({lq} and {gt})')
    return problems
