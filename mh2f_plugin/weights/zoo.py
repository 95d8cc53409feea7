"""The model zoo: published checkpoints by name, downloaded, verified and converted on first use.

``zoo.yml`` (beside this module) lists each checkpoint: its arch and options, what it was trained
on, the published PSNR/SSIM where there are some, a download URL pinned to a commit, and the
file's sha256. Files are kept under the zoo folder (``--zoo-dir``, else ``$MH2F_ZOO_DIR``, else
``~/.cache/mh2f_plugin``) at ``OWNER_REPO/PATH`` (the URL's repository and path), so a folder of
files downloaded by hand in that layout works offline. A file is used only once its sha256
matches; the converted BasicSR checkpoint is cached beside it (``PATH.basicsr.pth``) where the
folder is writable. ``$MH2F_ZOO_MIRROR`` replaces ``https://github.com/`` in every URL (a mirror);
``$MH2F_ZOO_CATALOGUE`` names a catalogue of your own in the same format.

Some authors publish their files on cloud drives that nothing downloads unattended. Their entries
give the authors' ``page`` and the ``file`` to look for there instead of a URL and a sha256: the
user downloads the file and hands it over once (``basicsr zoo get NAME --file PATH``, or puts it
at ``by-hand/NAME/FILE`` in the zoo folder). Its sha256 is then recorded beside it
(``FILE.sha256``) and checked at every later use.
"""
import difflib
import hashlib
import os
import re
import shutil
import urllib.error
import yaml
from dataclasses import dataclass, field
from functools import lru_cache

from mh2f_plugin.errors import WeightsError
from mh2f_plugin.utils.atomic_write import atomic_open, write_text_atomically
from mh2f_plugin.weights import tf_checkpoint
from mh2f_plugin.weights.checkpoint import read_checkpoint, save_converted

CATALOGUE = os.path.join(os.path.dirname(__file__), 'zoo.yml')
GITHUB = 'https://github.com/'
PREFIX = 'zoo:'
CONVERTED_SUFFIX = '.basicsr.pth'


class ZooError(WeightsError):
    """A zoo name that is unknown, a download that failed, or a file whose checksum is wrong."""


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint of ``zoo.yml``."""
    name: str
    arch: dict
    trained_on: str
    published: dict
    url: str = None
    sha256: str = None
    note: str = ''
    companions: dict = field(default_factory=dict)  # {file name beside the url's: sha256}: a TF checkpoint's data
    page: str = None  # the authors' page of a file downloaded by hand, and its name there
    file: str = None

    @property
    def by_hand(self):
        return self.page is not None

    @property
    def source(self):
        """``OWNER/REPO`` of the repository the entry comes from."""
        return '/'.join((self.page or self.url)[len(GITHUB):].split('/')[:2])

    @property
    def relative_path(self):
        """``OWNER_REPO/PATH`` from a ``https://github.com/OWNER/REPO/raw/COMMIT/PATH`` URL;
        ``by-hand/NAME/FILE`` for a file downloaded by hand."""
        if self.by_hand:
            return os.path.join(BY_HAND, self.name, self.file)
        match = URL.fullmatch(self.url)
        return os.path.join(f'{match.group(1)}_{match.group(2)}', *match.group(3).split('/'))

    def files(self):
        """``[(url, path relative to the zoo folder, sha256)]``: the file, then its companions."""
        folder, url_folder = os.path.dirname(self.relative_path), self.url.rsplit('/', 1)[0]
        return [(self.url, self.relative_path, self.sha256)] + [
            (f'{url_folder}/{name}', os.path.join(folder, name), digest) for name, digest in self.companions.items()
        ]


def catalogue():
    """``{name: ZooEntry}`` in the order of ``zoo.yml`` (or of ``$MH2F_ZOO_CATALOGUE``, a catalogue of your own)."""
    return _read_catalogue(os.environ.get('MH2F_ZOO_CATALOGUE') or CATALOGUE)


URL = re.compile(r'https://github\.com/([^/]+)/([^/]+)/raw/[0-9a-f]+/(.+)')
PAGE = re.compile(r'https://github\.com/[^/]+/[^/]+(/.*)?')
SHA256 = re.compile(r'[0-9a-f]{64}')
BY_HAND = 'by-hand'
RECORD_SUFFIX = '.sha256'


def _check_source(path, item):
    """A catalogue entry's URL and sha256, or (by hand) its page and file name, as they must be."""
    if item.by_hand:
        if not PAGE.fullmatch(str(item.page)) or not isinstance(item.file, str) or not re.fullmatch(
                r'[\w.-]+', item.file) or item.url or item.sha256:
            raise ZooError(f"{path}: entry '{item.name}': a file downloaded by hand has a page "
                           "(https://github.com/OWNER/REPO/...) and a file name, and no url or sha256")
        return
    if not isinstance(item.url, str) or not URL.fullmatch(item.url):
        raise ZooError(f"{path}: entry '{item.name}': url must be https://github.com/OWNER/REPO/raw/COMMIT/PATH, "
                       f'pinned to a commit, got {item.url!r}')
    if not isinstance(item.sha256, str) or not SHA256.fullmatch(item.sha256):
        raise ZooError(f"{path}: entry '{item.name}': sha256 must be 64 hexadecimal digits, got {item.sha256!r}")


@lru_cache(maxsize=None)
def _read_catalogue(path):
    try:
        with open(path, encoding='utf-8') as f:
            raw = yaml.safe_load(f)
        entries = {name: ZooEntry(name=name, published=item.pop('published', {}), **item) for name, item in raw.items()}
    except (OSError, yaml.YAMLError, TypeError, AttributeError) as error:
        raise ZooError(f'{path}: not a readable zoo catalogue ({error})') from error
    for item in entries.values():
        _check_source(path, item)
        if not isinstance(item.companions, dict) or not all(
                isinstance(name, str) and '/' not in name and isinstance(digest, str) and SHA256.fullmatch(digest)
                for name, digest in item.companions.items()):
            raise ZooError(f"{path}: entry '{item.name}': companions must map file names (beside the url's) to "
                           f'sha256 sums, got {item.companions!r}')
        for dataset, scores in (item.published.items() if isinstance(item.published, dict) else [('', None)]):
            numbers = isinstance(scores, dict) and all(isinstance(value, (int, float)) for value in scores.values())
            if not numbers or 'psnr' not in scores or not set(scores) <= {'psnr', 'ssim'}:
                raise ZooError(f"{path}: entry '{item.name}': published '{dataset}' must give psnr, and ssim where "
                               f'it was published, as numbers; got {scores!r}')
    return entries


def zoo_dir(override=None):
    """The zoo folder: ``override``, else ``$MH2F_ZOO_DIR``, else ``~/.cache/mh2f_plugin``."""
    return os.path.expanduser(override or os.environ.get('MH2F_ZOO_DIR') or '~/.cache/mh2f_plugin')


def entry(name):
    """The catalogue entry ``name``; ``ZooError`` listing close names when there is none."""
    entries = catalogue()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, entries, n=4, cutoff=0.5)
    hint = f"; close: {', '.join(close)}" if close else ''
    raise ZooError(f"{PREFIX}{name}: no such zoo name{hint} (basicsr zoo list shows all {len(entries)})")


def zoo_name(spec):
    """The zoo name in a weights argument: ``zoo:NAME``, or ``NAME`` itself when no file of
    that name exists and it is in the catalogue; None for a file path."""
    if spec.startswith(PREFIX):
        return spec[len(PREFIX):]
    if not os.path.exists(spec) and spec in catalogue():
        return spec
    return None


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def catalogued_arch(path):
    """The zoo entry's ``network_g`` for a file that is one of the catalogue's originals (same
    sha256: an official file downloaded by hand), else None. Keys cannot tell some networks apart
    (PReNet and the real-rain PReNet_real); the catalogue can."""
    prefix = tf_checkpoint.prefix_of(path)
    digest = sha256_of(tf_checkpoint.index_file(prefix) if prefix else path)
    return next((dict(item.arch) for item in catalogue().values() if item.sha256 and item.sha256 == digest), None)


def download_url(url):
    """``url`` with ``https://github.com/`` replaced by ``$MH2F_ZOO_MIRROR`` when set."""
    mirror = os.environ.get('MH2F_ZOO_MIRROR')
    return mirror.rstrip('/') + '/' + url[len(GITHUB):] if mirror else url


def download(url, path):
    """Downloads ``url`` to ``path`` with BasicSR's ``load_file_from_url`` (progress bar)."""
    from basicsr.utils.download_util import load_file_from_url
    url = download_url(url)
    folder, file_name = os.path.split(path)
    try:
        os.makedirs(folder, exist_ok=True)
        load_file_from_url(url, model_dir=folder, progress=True, file_name=file_name)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, 'reason', None) or getattr(error, 'strerror', None) or error
        raise ZooError(f'{url}: download failed ({reason}); download it by hand to {path} '
                       '(or name a folder of downloaded files with --zoo-dir / MH2F_ZOO_DIR)') from error


def verified_file(item, folder=None):
    """The path of ``item``'s original file in the zoo folder, it and its companions downloaded if
    absent and their sha256 checked. A mismatching file is never used: a fresh download is moved
    aside as ``.corrupt``."""
    for url, relative, expected in item.files():
        path = os.path.join(zoo_dir(folder), relative)
        downloaded = not os.path.isfile(path)
        if downloaded:
            download(url, path)
        found = sha256_of(path)
        if found != expected:
            if downloaded:
                os.replace(path, path + '.corrupt')
            raise ZooError(f'{path}: sha256 mismatch for {PREFIX}{item.name}: expected {expected}, found {found}; '
                           'the file was not used' + ('' if downloaded else ' (delete it to download it again)'))
    return os.path.join(zoo_dir(folder), item.relative_path)


def by_hand_file(item, folder=None, supplied=None):
    """The path of the file of a by-hand entry in the zoo folder, ``supplied`` (a path) copied
    there first when given; its sha256 recorded beside it the first time and checked afterwards."""
    path = os.path.join(zoo_dir(folder), item.relative_path)
    record = path + RECORD_SUFFIX
    if supplied:
        if not os.path.isfile(supplied):
            raise ZooError(f'{supplied}: no such file (--file names the file you downloaded for {item.name})')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(supplied, 'rb') as source, atomic_open(path) as target:
            shutil.copyfileobj(source, target)
        if os.path.exists(record):
            os.remove(record)
    if not os.path.isfile(path):
        raise ZooError(f'{PREFIX}{item.name}: download {item.file} by hand from {item.page}, then run basicsr zoo get '
                       f'{item.name} --file PATH (or put it at {path})')
    digest = sha256_of(path)
    if not os.path.isfile(record):
        write_text_atomically(record, digest + '\n')
    else:
        with open(record, encoding='utf-8') as f:
            recorded = f.read().strip()
        if recorded != digest:
            raise ZooError(f'{path}: sha256 {digest} is not the one recorded when it was added ({recorded}); the file '
                           f'was not used (basicsr zoo get {item.name} --file PATH adds another)')
    return path


def fetch(name, folder=None, supplied=None):
    """``(path, network_g)`` of zoo checkpoint ``name``: the cached converted file if there is one,
    else the verified original (converted and cached beside it where the folder is writable).
    ``supplied``: the file of a by-hand entry, added now."""
    item = entry(name)
    if supplied and not item.by_hand:
        raise ZooError(f'--file: {PREFIX}{name} is downloaded from {item.url}, not by hand')
    original = os.path.join(zoo_dir(folder), item.relative_path)
    converted = original + CONVERTED_SUFFIX
    if os.path.isfile(converted) and not supplied:
        if item.by_hand:
            by_hand_file(item, folder)  # the file may have changed since it was converted
        try:
            read_checkpoint(converted)
            return converted, dict(item.arch)
        except WeightsError:  # a damaged cache: converted again below from the verified original
            pass
    original = by_hand_file(item, folder, supplied) if item.by_hand else verified_file(item, folder)
    if os.access(os.path.dirname(original), os.W_OK):
        save_converted(original, converted, dict(item.arch))
        return converted, dict(item.arch)
    return original, dict(item.arch)
