"""The work behind ``basicsr web``, without the page: which models it may offer, the checkpoints a
user may name, and restoring one photo with one model at a time, cancellably.

Photos are read as ``derain`` reads them (any format, bit depth and channels; the pixel limit);
networks run with ``derain``'s numerics and tiling. Results are kept as files in a folder per run.
"""
import glob
import numpy as np
import os
import re
import threading
import time
import torch
from basicsr.utils import img2tensor, tensor2img
from basicsr.utils.registry import ARCH_REGISTRY
from dataclasses import dataclass
from functools import cached_property

from mh2f_plugin.data.image_io import decode_raw, from_float_bgr, read_bytes, to_float_bgr, write_image
from mh2f_plugin.errors import NotARestorerError, OptionsError
from mh2f_plugin.models.derain_model import fits_niqe
from mh2f_plugin.models.inference import restore, size_multiple
from mh2f_plugin.models.scoring import niqe
from mh2f_plugin.utils.file_names import safe_file_name
from mh2f_plugin.utils.options import network_of, parse_arch_spec
from mh2f_plugin.utils.options_validation import check_component
from mh2f_plugin.weights import zoo
from mh2f_plugin.weights.loader import load_network

LATEST = re.compile(r'net_g_(\d+|latest)\.pth')


class Cancelled(Exception):
    """The user cancelled the run."""


_running = threading.local()  # .cancel: the threading.Event of the run in this thread


def _stop_if_cancelled(*_):
    """A forward pre-hook of every module: ``Cancelled`` once this thread's run is cancelled."""
    cancel = getattr(_running, 'cancel', None)
    if cancel is not None and cancel.is_set():
        raise Cancelled()


_hook = None


@dataclass(frozen=True)
class ModelChoice:
    """One network to run: its ``label`` on the page, its ``weights`` (a path or a zoo name) and its
    ``network_g`` options (None where the weights name the network)."""
    label: str
    weights: str
    network_opt: dict = None


def zoo_choices(zoo_folder=None):
    """``[(shown text, zoo name)]``: every zoo entry that ``zoo get`` offers, with its training set,
    and the download-by-hand entries already in the zoo folder."""
    folder = zoo.zoo_dir(zoo_folder)
    return [(f"{name} ({item.trained_on.split(';')[0]})", name) for name, item in zoo.catalogue().items()
            if not item.by_hand or os.path.isfile(os.path.join(folder, item.relative_path))]


def latest_model(models_folder):
    """The newest ``net_g_*.pth`` of an experiment's ``models`` folder: ``net_g_latest.pth``, else the
    highest iteration; None where there is none."""
    found = {}
    for path in glob.glob(os.path.join(models_folder, 'net_g_*.pth')):
        match = LATEST.fullmatch(os.path.basename(path))
        if match:
            found[float('inf') if match.group(1) == 'latest' else int(match.group(1))] = path
    return found[max(found)] if found else None


def experiment_choices(folders):
    """``{name: ModelChoice}``: the latest model of each experiment (``FOLDER/NAME/models/``) in
    ``folders``, with the network of the options file that ``basicsr train`` copied beside it."""
    choices = {}
    for folder in folders:
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            weights = latest_model(os.path.join(folder, name, 'models'))
            options = sorted(glob.glob(os.path.join(folder, name, '*.yml')))
            if weights and options:
                choices[name] = ModelChoice(name, weights, network_of(options[0]))
    return choices


def inside(path, folders):
    """Whether ``path``, links and ``..`` resolved, lies in one of ``folders``."""
    real = os.path.realpath(path)
    return any(real.startswith(os.path.join(os.path.realpath(folder), '')) for folder in folders)


def typed_checkpoint(path, arch, folders):
    """The ``ModelChoice`` of a checkpoint typed into the page: ``OptionsError`` where ``path`` is
    outside ``folders`` (the folders ``basicsr web`` was given) or ``arch`` is no registered network."""
    if not inside(path, folders):
        allowed = ', '.join(folders) or 'none: start basicsr web with --folder DIR'
        raise OptionsError(f'{path}: outside the folders this page may read ({allowed})')
    return ModelChoice(os.path.basename(path), path, network_choice(arch))


def network_choice(arch):
    """``network_g`` from an ``--arch``-style text (``NAME`` or ``NAME:{yaml}``), or None where it is empty."""
    if not (arch or '').strip():
        return None
    network_opt = parse_arch_spec(arch.strip())
    check_component(network_opt, ARCH_REGISTRY, 'arch', where='network')
    return network_opt


@dataclass
class Photo:
    """A photo as ``derain`` reads it: ``raw``, the array as stored (gray, BGR or BGRA; 8 or 16 bits),
    and ``rgb``, the uint8 ``(H, W, 3)`` RGB that the page shows."""
    name: str
    raw: np.ndarray

    @cached_property
    def bgr(self):
        return to_float_bgr(self.raw, self.name)

    @cached_property
    def rgb(self):
        return np.ascontiguousarray(np.round(self.bgr[..., ::-1] * 255).astype(np.uint8))


def read_photo(path, name=None):
    """The photo at ``path`` (``name``, the uploaded file's, in errors); ``ImageReadError`` when it is
    not an image ``derain`` reads, or over the pixel limit."""
    name = name or os.path.basename(path)
    return Photo(name, decode_raw(read_bytes(path), name))


@dataclass
class Result:
    """One model's result: ``rgb`` (uint8, shown), ``path`` (the PNG to download, with the photo's
    bit depth and channels), ``seconds`` and ``niqe`` (None where the photo is too small for it)."""
    label: str
    rgb: np.ndarray
    path: str
    seconds: float
    niqe: float


class Restorer:
    """Runs one network at a time over photos, keeping the last one built; a run that is
    cancelled stops at its next layer (torch) or its next photo (an engine)."""

    def __init__(self, numerics_for, device, tile=None, tile_overlap=32, zoo_folder=None):
        """``numerics_for(net, network_g)``: how to run a built network (the ``Numerics`` that ``derain``'s
        flags give, on ``device``); ``tile``, ``tile_overlap``: as ``derain --tile``."""
        self.numerics_for = numerics_for
        self.device = device
        self.tile, self.tile_overlap, self.zoo_folder = tile, tile_overlap, zoo_folder
        self.lock = threading.Lock()
        self.cached = None
        global _hook
        _hook = _hook or torch.nn.modules.module.register_module_forward_pre_hook(_stop_if_cancelled)

    def network(self, choice):
        """``(numerics, multiple)`` of ``choice``, built once and kept until another is asked for."""
        key = (choice.weights, repr(choice.network_opt))
        if self.cached is None or self.cached[0] != key:
            self.cached = None  # the last network is freed before the next one is built
            net, network_opt = load_network(
                choice.weights, choice.network_opt, default_opt={'type': 'MH2FNet'}, zoo_folder=self.zoo_folder)
            numerics = self.numerics_for(net, network_opt)
            self.cached = key, numerics, size_multiple(net)
        return self.cached[1:]

    def run(self, choice, photo, folder, cancel, on_tile=None):
        """Restores ``photo`` with ``choice``; the result is written to ``folder``. ``cancel``, a
        ``threading.Event``, stops the run with ``Cancelled``; ``on_tile(done, total)`` follows the
        tiles, where there are tiles."""
        with self.lock:
            _running.cancel = cancel
            try:
                _stop_if_cancelled()
                numerics, multiple = self.network(choice)
                lq = img2tensor(photo.bgr, bgr2rgb=True, float32=True)[None]
                start = time.perf_counter()
                with torch.no_grad(), numerics.autocast:
                    try:
                        out = restore(
                            numerics.runner,
                            lq.to(self.device, memory_format=numerics.memory_format),
                            self.tile,
                            tile_overlap=self.tile_overlap,
                            multiple=multiple,
                            on_tile=on_tile).float().cpu()
                    except NotARestorerError as error:
                        raise NotARestorerError(f'{choice.weights}: {error}') from error
                seconds = time.perf_counter() - start
                _stop_if_cancelled()
            finally:
                _running.cancel = None
        bgr = tensor2img(out)
        path = os.path.join(folder, f'{os.path.splitext(photo.name)[0]}_{safe_file_name(choice.label)}.png')
        write_image(path, from_float_bgr(tensor2img(out, out_type=np.float32, min_max=(0, 1)), photo.raw))
        score = niqe(bgr, photo.name) if fits_niqe(*bgr.shape[:2]) else None
        return Result(choice.label, np.ascontiguousarray(bgr[..., ::-1]), path, seconds, score)
