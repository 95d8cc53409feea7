"""The on-disk form of a paired dataset converted to LMDB, as ``basicsr lmdb`` writes it.

``OUT/lq.lmdb`` and ``OUT/gt.lmdb`` are BasicSR LMDBs: ``data.mdb``, ``lock.mdb`` and
``meta_info.txt`` with ``key.png (h,w,c) compression_level`` lines as BasicSR writes them (its
reader keeps a key up to the first dot), values PNG bytes. ``OUT/pairs.txt`` holds one
``lq_key gt_key`` line per pair, so that a clean image shared by many rainy ones (Rain1400) is
stored once. Keys are the images' paths relative to the dataset root, without extension, blanks
and dots made '_', and every other character outside ASCII (BasicSR's reader encodes keys as
ASCII) or a '%' written as the '%XX' escapes of its UTF-8 bytes (``urllib.parse.unquote`` reverses
that): ``regen/pluie été.png`` is stored as ``regen/pluie_%C3%A9t%C3%A9``. Conversion writes
``OUT.partial`` and renames it to ``OUT`` when complete, so an ``OUT`` that exists is complete; a
rerun of an interrupted conversion, killed at any point, keeps what was committed and finishes.
"""
import contextlib
import cv2
import fcntl
import json
import lmdb
import os
import re
import shutil
import signal
import struct
from dataclasses import dataclass
from multiprocessing import Pool
from tqdm import tqdm
from urllib.parse import quote

from mh2f_plugin.data.image_io import ImageReadError, decode_raw, image_header, read_bytes, to_float_bgr
from mh2f_plugin.data.layouts import Pair, read_records
from mh2f_plugin.errors import DatasetError, OptionsError
from mh2f_plugin.utils.atomic_write import PARTIAL_SUFFIX, write_text_atomically

PAIRS_FILE = 'pairs.txt'
META_FILE = 'meta_info.txt'
DATABASES = ('lq', 'gt')
SETTINGS_FILE = 'conversion.json'
PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels
MAP_SIZE_MARGIN = 64 * 2**20
COMMIT_EVERY = 64
SHAPE = re.compile(r'\((\d+),(\d+),(\d+)\)')
KEY_SAFE = "/_-+=,;:!~'()[]@&$"  # kept as they are; letters and digits always are


class LmdbError(DatasetError):
    """An LMDB dataset that is missing, incomplete, corrupt, or whose metadata is malformed."""


def database_path(root, name):
    return os.path.join(root, f'{name}.lmdb')


def read_meta_info(db_path):
    """``{key: (h, w, c)}`` from ``db_path/meta_info.txt``; ``LmdbError`` naming a malformed line."""
    meta_path = os.path.join(db_path, META_FILE)
    meta = {}
    for number, (key, shape, _) in read_records(meta_path, 'key (h,w,c) compression_level'):
        match = SHAPE.fullmatch(shape)
        if match is None:
            raise LmdbError(f'{meta_path}:{number}: the shape must be (h,w,c), got {shape!r}')
        meta[key.removesuffix('.png')] = tuple(int(v) for v in match.groups())
    return meta


def open_database(db_path, **options):
    """``lmdb.open(db_path)``; ``LmdbError`` naming it when it is no readable LMDB database."""
    try:
        return lmdb.open(db_path, **options)
    except lmdb.Error as error:
        raise LmdbError(f'{db_path}: not a readable LMDB database ({error})') from error


def check_complete(root):
    """Raises ``LmdbError`` unless ``root`` holds both databases, readable, with their meta_info files."""
    if not os.path.isdir(root):
        hint = ' (an interrupted conversion left ' + root + PARTIAL_SUFFIX + '; rerun basicsr lmdb to finish it)' \
            if os.path.isdir(root + PARTIAL_SUFFIX) else ''
        raise LmdbError(f'{root}: LMDB dataset not found{hint}')
    for name in DATABASES:
        meta = os.path.join(database_path(root, name), META_FILE)
        for required in (os.path.join(database_path(root, name), 'data.mdb'), meta):
            if not os.path.isfile(required):
                raise LmdbError(f'{root}: not a complete LMDB dataset: {required} is missing')
        try:
            open_database(database_path(root, name), readonly=True, lock=False, readahead=False).close()
        except LmdbError as error:  # a reader of this process holds it open: it was readable then
            if 'already open in this process' not in str(error):
                raise


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
        raise LmdbError(f'{root}: no {PAIRS_FILE}, and the keys of lq.lmdb and gt.lmdb differ')
    for pair in pairs:
        for key, meta, name in ((pair.lq, lq_meta, 'lq'), (pair.gt, gt_meta, 'gt')):
            if key not in meta:
                raise LmdbError(f'{root}: key {key!r} is not in {os.path.join(database_path(root, name), META_FILE)}')
    if not pairs:
        raise LmdbError(f'{root}: the LMDB dataset holds no pairs')
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
    """The key of ``path``: its path relative to ``root`` without extension, blanks and dots as '_',
    other characters outside ASCII letters, digits and ``KEY_SAFE`` as '%XX' UTF-8 escapes."""
    relative = re.sub(r'[\s.]', '_', os.path.splitext(os.path.relpath(path, root))[0])
    return quote(relative.replace(os.sep, '/'), safe=KEY_SAFE)


def plan_entries(root, pairs, layout, *, rainy_half=None, basicsr_compatible=False):
    """The images to store and the ``(lq_key, gt_key)`` pairs.

    Each clean image is stored once unless ``basicsr_compatible``, where the clean database
    repeats it under every rainy key so BasicSR's own ``PairedImageDataset`` can read it.
    Side-by-side images are split into their halves here.
    """
    entries, pair_keys, owners = {}, [], {}

    def add(database, key, path, half=None):
        owner = owners.setdefault((database, key), (path, half))
        if owner != (path, half):
            raise DatasetError(f'{root}: {owner[0]} and {path} would share the {database} key {key!r}')
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


def size_bound(header):
    """An upper bound of the PNG size of an image with this ``image_header``: raw pixels at 2 bytes
    per sample (PIL reports 16-bit colour as 8-bit) plus PNG overhead."""
    width, height, samples = header
    return int(width * height * samples * 2 * 1.01) + height + 4096


def check_pair_sizes(entries, pair_keys, headers):
    """``DatasetError`` listing pairs whose rainy and clean images (or halves) differ in size."""
    sizes = {}
    for entry in entries:
        width, height, _ = headers[entry.path]
        sizes[entry.database, entry.key] = (width // 2 if entry.half else width, height), entry.path
    mismatched = [
        f'{sizes["lq", lq][1]} is {sizes["lq", lq][0][0]}x{sizes["lq", lq][0][1]}, '
        f'{sizes["gt", gt][1]} is {sizes["gt", gt][0][0]}x{sizes["gt", gt][0][1]}' for lq, gt in pair_keys
        if sizes['lq', lq][0] != sizes['gt', gt][0]
    ]
    if mismatched:
        more = f' and {len(mismatched) - 3} more' if len(mismatched) > 3 else ''
        raise DatasetError(f"pair sizes differ (width x height): {'; '.join(mismatched[:3])}{more}")


def png_shape(data):
    """``(h, w, c)`` read from a PNG's header."""
    width, height, _, colour_type = struct.unpack('>IIBB', data[16:26])
    return height, width, PNG_CHANNELS[colour_type]


def _open_databases(work, entries, headers):
    """Opens both databases with map sizes bounding everything they will hold (every entry,
    including clean images repeated by ``--basicsr-compatible``)."""
    sizes = {name: MAP_SIZE_MARGIN for name in DATABASES}
    for entry in entries:
        sizes[entry.database] += size_bound(headers[entry.path])
    return {name: open_database(database_path(work, name), map_size=sizes[name]) for name in DATABASES}


def _inside(path, folder):
    """Whether ``path`` is ``folder`` or lies inside it (links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_replaceable(root, out):
    """Raises ``OptionsError`` unless ``--overwrite`` may replace ``out``: a folder, not a link,
    that holds only what ``basicsr lmdb`` writes, and that neither is, holds nor lies inside the
    dataset ``root``."""
    if os.path.islink(out):
        raise OptionsError(f'{out}: is a symbolic link; --overwrite replaces only a folder basicsr lmdb wrote')
    if _inside(root, out) or _inside(out, root):
        raise OptionsError(f'{out}: is, holds or lies inside the dataset {root}; --overwrite never replaces the source')
    databases = [database_path(out, name) for name in DATABASES]
    ours = os.path.isdir(out) and set(os.listdir(out)) <= {os.path.basename(db) for db in databases} | {PAIRS_FILE}
    for db in databases:
        ours = ours and os.path.isfile(os.path.join(db, META_FILE)) and set(
            os.listdir(db)) <= {'data.mdb', 'lock.mdb', META_FILE}
    if not ours:
        raise OptionsError(f'{out}: is not an LMDB dataset written by basicsr lmdb (lq.lmdb and gt.lmdb with '
                           f'{META_FILE}, pairs.txt); --overwrite replaces only those: remove it yourself or '
                           'choose another OUT')


@contextlib.contextmanager
def _exclusive(work, out):
    """Holds an exclusive lock on the staging folder ``work`` (created if absent), so that a second
    conversion into ``out`` refuses at once instead of waiting on the first's databases."""
    if os.path.islink(work):
        raise OptionsError(f'{work}: is a symbolic link, not a staging folder of basicsr lmdb; remove it')
    os.makedirs(work, exist_ok=True)
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OptionsError(f'{out}: another basicsr lmdb is converting into it now; wait for it to finish') from None
    try:
        yield
    finally:
        os.close(fd)


def _resume_or_start(work, settings):
    """Prepares the locked staging folder ``work``: kept when an interrupted run with the same
    settings left it, emptied when it has no settings file (killed before any image was stored)."""
    settings_path = os.path.join(work, SETTINGS_FILE)
    if not os.path.isfile(settings_path):
        for name in os.listdir(work):
            path = os.path.join(work, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        write_text_atomically(settings_path, json.dumps(settings))
        return
    try:
        with open(settings_path, encoding='utf-8') as f:
            previous = json.load(f)
    except (OSError, ValueError) as error:
        raise LmdbError(f'{settings_path}: unreadable ({error}); remove {work} and convert again') from error
    if previous != settings:
        changed = ', '.join(f'{key} {previous.get(key)!r} -> {value!r}' for key, value in settings.items()
                            if previous.get(key) != value)
        raise OptionsError(f'{work}: an interrupted conversion with other settings is there ({changed}); '
                           'rerun it with its settings, or remove the folder')


def write_lmdb(root,
               out,
               pairs,
               *,
               layout,
               rainy_half=None,
               basicsr_compatible=False,
               workers=1,
               compress_level=1,
               overwrite=False,
               progress=True):
    """Converts ``pairs`` of the dataset at ``root`` into the LMDB dataset ``out``; returns the
    number of images encoded by this run (a rerun after an interruption encodes only the rest).
    An existing ``out`` is replaced only with ``overwrite``, and only if ``check_replaceable``
    allows it."""
    _check_output(root, out, overwrite)
    entries, pair_keys = plan_entries(root, pairs, layout, rainy_half=rainy_half, basicsr_compatible=basicsr_compatible)
    headers = {path: image_header(path) for path in {entry.path for entry in entries}}
    check_pair_sizes(entries, pair_keys, headers)
    work = out.rstrip(os.sep) + PARTIAL_SUFFIX
    settings = {
        'source': os.path.abspath(root),
        'layout': layout,
        'rainy_half': rainy_half,
        'basicsr_compatible': basicsr_compatible,
        'compress_level': compress_level
    }
    with _exclusive(work, out):
        _check_output(root, out, overwrite)  # again: another run may have finished while this one planned
        _resume_or_start(work, settings)
        try:
            encoded = _fill(
                work, entries, pair_keys, headers, compress_level=compress_level, workers=workers, progress=progress)
        except lmdb.Error as error:
            raise LmdbError(f'{work}: cannot write the databases ({error}); fix that and rerun the same command '
                            'to finish the conversion') from error
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(work, out)  # the settings file goes along and is removed last: any crash up to here reruns
    os.remove(os.path.join(out, SETTINGS_FILE))
    return encoded


def _check_output(root, out, overwrite):
    if os.path.lexists(out):
        if not overwrite:
            raise OptionsError(f'{out}: already exists; pass --overwrite to replace it')
        check_replaceable(root, out)


def _fill(work, entries, pair_keys, headers, *, compress_level, workers, progress):
    """Stores every entry not yet in the databases of ``work``, then their meta_info and the
    pairing; returns how many images this run encoded."""
    envs = _open_databases(work, entries, headers)
    todo = []
    for entry in entries:
        with envs[entry.database].begin() as txn:
            if txn.get(entry.key.encode()) is None:
                todo.append((entry, compress_level))
    _store(envs, todo, workers=workers, progress=progress)
    for name, env in envs.items():
        keys = [e.key for e in entries if e.database == name]
        _write_meta_info(env, keys, database_path(work, name), compress_level=compress_level)
        env.close()
    write_text_atomically(os.path.join(work, PAIRS_FILE), ''.join(f'{lq} {gt}\n' for lq, gt in pair_keys))
    return len(todo)


def _ignore_interrupts():
    """In encoding workers: Ctrl-C is the parent's to handle (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _store(envs, todo, *, workers, progress):
    """Encodes ``todo`` in ``workers`` processes and commits every ``COMMIT_EVERY`` images."""
    txns = {name: env.begin(write=True) for name, env in envs.items()}
    with Pool(workers, initializer=_ignore_interrupts) if workers > 1 else contextlib.nullcontext() as pool:
        results = pool.imap(_encode, todo, chunksize=4) if pool else map(_encode, todo)
        for done, (database, key, data) in enumerate(
                tqdm(results, total=len(todo), unit='image', disable=not progress, desc='lmdb'), 1):
            txns[database].put(key.encode(), data)
            if done % COMMIT_EVERY == 0:
                for name in txns:
                    txns[name].commit()
                    txns[name] = envs[name].begin(write=True)
    for txn in txns.values():
        txn.commit()


def _write_meta_info(env, keys, db_path, *, compress_level):
    with env.begin() as txn:
        lines = [
            f'{key}.png ({",".join(map(str, png_shape(txn.get(key.encode()))))}) {compress_level}\n' for key in keys
        ]
    write_text_atomically(os.path.join(db_path, META_FILE), ''.join(lines))


def verify_lmdb(root, progress=True):
    """Decodes every stored image and checks it against ``meta_info.txt`` and the pairing.

    Returns a list of problems, each naming the database and key; empty when all is well.
    """
    pairs = read_pairs(root)
    problems, shapes = [], {}
    for name in DATABASES:
        db_path = database_path(root, name)
        env = open_database(db_path, readonly=True, lock=False, readahead=False)
        with env.begin() as txn:
            for key, shape in tqdm(
                    read_meta_info(db_path).items(), unit='image', desc=f'verify {name}', disable=not progress):
                try:
                    data = txn.get(key.encode())
                except lmdb.Error as error:
                    problems.append(f'{name}.lmdb:{key}: cannot be read ({error})')
                    continue
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
