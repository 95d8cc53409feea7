"""Where the rainy and clean images of a deraining dataset are, and which goes with which.

A folder layout is a rainy folder, a clean folder and a rule that turns a rainy file's stem (its
name without extension) into its clean partner's stem. Pairing indexes the clean folder by stem
once and looks each rainy image up (linear in the number of files). ``docs/datasets.md``
shows the tree of every layout. SPA-Data's list files and Rain800's side-by-side images have
their own readers here.
"""
import os
import re
from dataclasses import dataclass

from mh2f_plugin.errors import DatasetError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
SHOWN = 5  # how many offending files an error lists


class LayoutError(DatasetError):
    """A dataset folder that does not match the layout it was read with."""


@dataclass(frozen=True)
class Pair:
    """One training or test pair: paths of the rainy (``lq``) and clean (``gt``) images."""
    lq: str
    gt: str


@dataclass(frozen=True)
class FolderLayout:
    """Rainy images in the first existing ``lq_dirs`` folder, clean ones in ``gt_dir`` (both
    relative to the dataset root); ``pattern`` (a full match on the rainy stem) and
    ``replacement`` (``re`` expansion) give the clean stem. In a ``flat`` layout both live in
    one folder and rainy images are the files whose stem matches ``pattern``; elsewhere a
    rainy file that does not match is an error."""
    name: str
    lq_dirs: tuple
    gt_dir: str
    pattern: str = r'(.+)'
    replacement: str = r'\1'
    flat: bool = False

    def lq_dir(self, root):
        """The rainy folder found under ``root``, or None."""
        return next((os.path.join(root, d) for d in self.lq_dirs if os.path.isdir(os.path.join(root, d))), None)

    def present(self, root):
        return self.lq_dir(root) is not None and os.path.isdir(os.path.join(root, self.gt_dir))


LAYOUTS = (
    FolderLayout('rain200', ('rain/X2', 'rain'), 'norain', r'(.+)x2'),
    FolderLayout('rain200_renamed', ('input', ), 'groundtruth', r'rain-(\d+)', r'norain-\1'),
    FolderLayout('rain1400', ('rainy_image', ), 'ground_truth', r'(\d+)_\d+'),
    FolderLayout('rain1400_renamed', ('input', ), 'groundtruth', r'(\d+)_\d+'),
    FolderLayout('spa_test', ('rain', ), 'gt', r'(.+)', r'\1gt'),
    FolderLayout('input_groundtruth', ('input', ), 'groundtruth'),
    FolderLayout('input_target', ('input', ), 'target'),
    FolderLayout('rain_norain', ('rain', ), 'norain'),
    FolderLayout('inputcrop_cleancrop', ('inputcrop', ), 'cleancrop'),
    FolderLayout('rain100_rainy', ('rainy', ), '.', r'rain-(\d+)', r'norain-\1'),
    FolderLayout('rain100', ('.', ), '.', r'rain-(\d+)', r'norain-\1', flat=True),
)
LAYOUT_NAMES = tuple(layout.name for layout in LAYOUTS) + ('spa_list', 'regex', 'side_by_side')


def image_files(folder):
    """Image file names in ``folder`` (not recursive), sorted."""
    return sorted(
        f for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))


def _stem(name):
    return os.path.splitext(name)[0]


def _listing(items):
    shown = ', '.join(str(item) for item in items[:SHOWN])
    return shown + (f' and {len(items) - SHOWN} more' if len(items) > SHOWN else '')


def index_by_stem(folder):
    """``{stem: path}`` of the images in ``folder``; two files with one stem are an error."""
    index = {}
    for name in image_files(folder):
        path = os.path.join(folder, name)
        if _stem(name) in index:
            raise LayoutError(f'{folder}: two clean images share the stem {_stem(name)!r}: '
                              f'{os.path.basename(index[_stem(name)])} and {name}')
        index[_stem(name)] = path
    return index


def pair_folder(root, layout):
    """All pairs of ``layout`` under ``root``, sorted by rainy path; ``LayoutError`` if any rainy
    image does not fit the name rule or has no clean partner."""
    lq_dir, gt_dir = layout.lq_dir(root), os.path.normpath(os.path.join(root, layout.gt_dir))
    if lq_dir is None or not os.path.isdir(gt_dir):
        raise LayoutError(f"{root}: layout '{layout.name}' needs folders {' or '.join(layout.lq_dirs)} "
                          f'and {layout.gt_dir}')
    clean = index_by_stem(gt_dir)
    pattern = re.compile(layout.pattern)
    pairs, unnamed, orphans = [], [], []
    for name in image_files(lq_dir):
        match = pattern.fullmatch(_stem(name))
        if match is None:
            if not layout.flat:
                unnamed.append(name)
            continue
        partner = match.expand(layout.replacement)
        if partner in clean:
            pairs.append(Pair(os.path.join(lq_dir, name), clean[partner]))
        else:
            orphans.append(f"{os.path.join(lq_dir, name)} (looked for {os.path.join(gt_dir, partner)}.*)")
    if unnamed:
        raise LayoutError(f"{lq_dir}: {len(unnamed)} rainy file(s) do not fit layout '{layout.name}' "
                          f'(stem must match {layout.pattern!r}): {_listing(unnamed)}')
    if orphans:
        raise LayoutError(f"{root}: {len(orphans)} rainy image(s) have no clean partner in layout "
                          f"'{layout.name}': {_listing(orphans)}")
    if not pairs:
        raise LayoutError(f"{lq_dir}: no rainy images found for layout '{layout.name}'")
    return pairs


def read_records(path, form):
    """Yields ``(line_number, fields)`` for each non-blank line of the text file ``path``.

    ``form`` names the fields a line holds, space-separated (e.g. ``"rainy_path gt_path"``); a line
    with another number of fields raises a ``LayoutError`` naming ``path``, the line and ``form``.
    """
    width = len(form.split())
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != width:
                raise LayoutError(f'{path}:{number}: expected "{form}", got {line.strip()!r}')
            yield number, fields


def pair_list_file(root, list_file, allow_missing=False):
    """SPA-Data: a list file of ``rainy_path gt_path`` lines relative to ``root`` (a leading
    ``/`` or ``./`` is ignored). Pairs whose files are missing are an error unless
    ``allow_missing``; returns ``(pairs, missing)``."""
    list_path = list_file if os.path.isabs(list_file) else os.path.join(root, list_file)
    if not os.path.isfile(list_path):
        raise LayoutError(f'{list_path}: list file not found')
    pairs, missing = [], []
    for number, fields in read_records(list_path, 'rainy_path gt_path'):
        lq, gt = (os.path.join(root, os.path.normpath(p.lstrip('/'))) for p in fields)
        absent = [field for field, path in zip(fields, (lq, gt)) if not os.path.isfile(path)]
        if absent:
            missing.append(f'line {number}: {" and ".join(absent)}')
        else:
            pairs.append(Pair(lq, gt))
    if missing and not allow_missing:
        raise LayoutError(f'{list_path}: {len(missing)} listed file(s) are missing ({_listing(missing)}); '
                          'set allow_missing: true to train on the remaining pairs')
    if not pairs:
        raise LayoutError(f'{list_path}: no usable pairs')
    return pairs, missing


def pair_side_by_side(root):
    """Rain800: every image in ``root`` holds both halves; each pair is the file with itself."""
    names = image_files(root)
    if not names:
        raise LayoutError(f'{root}: no images found for layout side_by_side')
    return [Pair(os.path.join(root, n), os.path.join(root, n)) for n in names]


def find_pairs(root,
               layout='auto',
               *,
               list_file=None,
               allow_missing=False,
               lq_folder=None,
               gt_folder=None,
               pattern=None,
               replacement=r'\1'):
    """Pairs of the dataset at ``root``; returns ``(layout_name, pairs, missing)``.

    ``layout='auto'`` reads ``list_file`` if one is given, else tries the folder layouts in order
    and takes the first that pairs every rainy image; ``'regex'`` uses ``lq_folder``,
    ``gt_folder``, ``pattern`` and ``replacement``. ``missing`` lists skipped list-file lines.
    """
    if not os.path.isdir(root):
        raise LayoutError(f'{root}: dataset folder not found')
    if not os.listdir(root):
        raise LayoutError(f'{root}: dataset folder is empty')
    if layout not in LAYOUT_NAMES + ('auto', ):
        raise LayoutError(f"{root}: unknown layout {layout!r}; known layouts: auto, {', '.join(LAYOUT_NAMES)}")
    if layout == 'spa_list' or (layout == 'auto' and list_file):
        if not list_file:
            raise LayoutError(f'{root}: layout spa_list needs the option list_file')
        return ('spa_list', ) + pair_list_file(root, list_file, allow_missing)
    if layout == 'side_by_side':
        return 'side_by_side', pair_side_by_side(root), []
    if layout == 'regex':
        if not (lq_folder and gt_folder and pattern):
            raise LayoutError(f'{root}: layout regex needs the options lq_folder, gt_folder and pattern')
        return 'regex', pair_folder(root, FolderLayout('regex', (lq_folder, ), gt_folder, pattern, replacement)), []
    if layout != 'auto':
        return layout, pair_folder(root, next(lay for lay in LAYOUTS if lay.name == layout)), []
    failures = []
    for candidate in LAYOUTS:
        if candidate.present(root):
            try:
                return candidate.name, pair_folder(root, candidate), []
            except LayoutError as error:
                failures.append(f'  {candidate.name}: {error}')
    if failures:
        raise LayoutError(f'{root}: no layout pairs every rainy image:\n' + '\n'.join(failures))
    raise LayoutError(f'{root}: no known layout found (see docs/datasets.md); expected e.g. input/ + target/, '
                      'rain/X2/ + norain/, rainy_image/ + ground_truth/, or set layout: regex')
