"""Reading weights files: BasicSR checkpoints and the authors' own files, converted on the fly.

``read_weights(path)`` accepts what users download: a BasicSR checkpoint (``params`` /
``params_ema``), one written by ``basicsr convert-weights`` (which also records its
``network_g``), or an official file in any layout of ``mh2f_plugin.weights.official`` (plain state
dicts, ``{'net': ...}`` or ``{'state_dict': ...}`` containers, ``module.`` prefixes, and the
BasicSR files without ``network_g`` of the networks trained with BasicSR forks: Restormer,
DRSformer). Files are read with torch's safe loader
(``weights_only``): tensors and plain containers only. Every problem is a ``WeightsError`` that
names the file: not found, not a torch file, truncated, no state dict inside, unknown layout (with
the keys that did not match), or weights of another network.
"""
import inspect
import os
import torch
import zipfile
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from dataclasses import dataclass

from mh2f_plugin.errors import WeightsError
from mh2f_plugin.utils.atomic_write import atomic_open
from mh2f_plugin.weights import official, tf_checkpoint

PARAM_KEYS = ('params_ema', 'params')
CONTAINER_KEYS = ('net', 'state_dict', 'model')  # official files: RESCAN and SPANet use 'net'
BASICSR = 'BasicSR'


@dataclass
class Weights:
    """A state dict ready for one of our archs, with the ``network_g`` options it belongs to where
    the file says (converted and official files; None for plain BasicSR checkpoints), and the
    format it was read from (``'BasicSR'`` or an official format's name)."""
    state: dict
    network_opt: dict
    source: str


def read_checkpoint(path):
    """The object stored in ``path``, on the CPU; ``WeightsError`` if it is no readable torch file."""
    if not os.path.exists(path):
        raise WeightsError(f'{path}: weights file not found')
    if not os.path.isfile(path):
        raise WeightsError(f'{path}: not a file')
    try:
        with open(path, 'rb') as f:
            if not f.read(1):
                raise WeightsError(f'{path}: empty file')
    except OSError as error:
        raise WeightsError(f'{path}: cannot read: {error.strerror or error}') from error
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # the unpickler raises anything at all on bytes that are no checkpoint
        message = str(error)
        if 'Unsupported global' in message:
            raise WeightsError(f'{path}: holds Python objects besides tensors, which the safe loader refuses; '
                               'load it yourself if you trust it and save its state dict') from error
        if isinstance(error, (EOFError, OSError, zipfile.BadZipFile)) or any(
                hint in message for hint in ('zip archive', 'central directory', 'unexpected EOF')):
            raise WeightsError(f'{path}: truncated or damaged weights file') from error
        raise WeightsError(f'{path}: not a PyTorch weights file') from error


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _without_prefix(state, prefix):
    if all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state


def state_dict_of(checkpoint, path, param_key=None, fallback=False):
    """``(container key or None, state dict)`` in a loaded checkpoint. ``param_key`` is tried first,
    then ``params_ema``, ``params``, and the official containers; ``module.`` prefixes (DataParallel)
    are removed. A ``param_key`` the checkpoint lacks is refused, listing the keys it has, unless
    ``fallback`` (BasicSR's own loading, where ``params`` is the default and the other stands in)."""
    if not isinstance(checkpoint, dict):
        raise WeightsError(f'{path}: not a checkpoint: it holds a {type(checkpoint).__name__}, not a dict of tensors')
    if param_key and param_key not in checkpoint and any(k in checkpoint for k in PARAM_KEYS + CONTAINER_KEYS):
        if not fallback or param_key not in PARAM_KEYS or not any(k in checkpoint for k in PARAM_KEYS):
            raise WeightsError(f"{path}: no '{param_key}' in the checkpoint (it has {', '.join(map(str, checkpoint))})")
    for key in ((param_key, ) if param_key else ()) + PARAM_KEYS + CONTAINER_KEYS:
        if key in checkpoint and _is_state_dict(checkpoint[key]):
            return key, _without_prefix(checkpoint[key], 'module.')
    if _is_state_dict(checkpoint):
        return None, _without_prefix(checkpoint, 'module.')
    raise WeightsError(f"{path}: no state dict in the checkpoint (keys: {', '.join(map(str, checkpoint))})")


def read_weights(path, param_key=None, fallback=False):
    """``Weights`` from ``path``: BasicSR's format as it is, an official layout converted (TensorFlow
    checkpoints too: ``tf_checkpoint``); ``param_key`` and ``fallback`` as ``state_dict_of`` takes them."""
    if tf_checkpoint.prefix_of(path):
        if param_key:
            raise WeightsError(f"{path}: a TensorFlow checkpoint, which has no '{param_key}'")
        checkpoint = state = tf_checkpoint.read(path)
        key = None
    else:
        checkpoint = read_checkpoint(path)
        key, state = state_dict_of(checkpoint, path, param_key, fallback)
    fmt = official.detect(state)
    if key in PARAM_KEYS and (checkpoint.get('network_g') or fmt is None):
        return Weights(state, checkpoint.get('network_g'), BASICSR)
    if fmt is None:
        return Weights(state, None, 'plain state dict')
    try:
        network_opt, state = official.convert(fmt, state)
    except WeightsError as error:
        raise WeightsError(f'{path}: {error}') from error
    return Weights(state, network_opt, f'{fmt.name} ({fmt.source})')


def merged_options(weights, requested, path):
    """The ``network_g`` to build for ``weights``: ``requested`` (the user's, possibly None or
    without ``type``) over what the file says. The requested type must be the file's or a
    variant of it (``PRN`` for a PReNet file); a variant's own defaults then replace the file's
    options that only repeat the defaults of the file's type (values the keys cannot tell)."""
    requested = dict(requested or {})
    found = dict(weights.network_opt or {})
    if not found:
        return requested
    wanted = requested.get('type', found['type'])
    if wanted != found['type'] and wanted in ARCH_REGISTRY and found['type'] in ARCH_REGISTRY:
        if not issubclass(ARCH_REGISTRY.get(wanted), ARCH_REGISTRY.get(found['type'])):
            raise WeightsError(f"{path}: holds {found['type']} weights ({weights.source}), not {wanted}")
    if weights.source == BASICSR and 'type' in requested:
        return requested
    if wanted != found['type'] and wanted in ARCH_REGISTRY:  # a variant: its defaults over the file's guesses
        guessed = _defaults(ARCH_REGISTRY.get(found['type']))
        found = {key: value for key, value in found.items() if key not in guessed or guessed[key] != value}
    return {**found, **requested, 'type': wanted}


def _defaults(cls):
    """The default argument values of ``cls(...)``: what a file's options say when it cannot tell."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def load_into(net, weights, path, strict=True):
    """Loads ``weights`` into ``net`` (its bare module); ``WeightsError`` naming what does not fit."""
    try:
        net.load_state_dict(weights.state, strict=strict)
    except RuntimeError as error:
        expected, found = set(net.state_dict()), set(weights.state)
        missing, unexpected = expected - found, found - expected
        name = type(net).__name__
        if weights.source == 'plain state dict' and len(missing) == len(expected):
            fmt, absent = official.closest(weights.state)
            raise WeightsError(
                f'{path}: unknown checkpoint format: it is neither a {name} state dict nor a BasicSR checkpoint, '
                f'and of the official layouts the closest, {fmt.name} ({fmt.source}), lacks '
                f'{official.listing(absent)}; its keys: {official.listing(found)}') from error
        if missing or unexpected:
            parts = [
                f'missing {official.listing(missing)}' if missing else '',
                f'unexpected {official.listing(unexpected)}' if unexpected else ''
            ]
            detail = '; '.join(p for p in parts if p)
        else:
            detail = 'parameter shapes differ (another width or depth)'
        raise WeightsError(f'{path}: {weights.source} weights do not fit {name}: {detail}') from error


def build_loaded(path, weights, network_opt):
    """``(net, network_g)``: the network ``network_opt`` names, with ``weights`` (read from ``path``) loaded."""
    net = build_network(dict(network_opt))
    load_into(net, weights, path)
    return net, network_opt


def save_atomically(obj, path):
    """``torch.save`` to a temporary file beside ``path``, renamed into place only when complete."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_open(path) as f:
            torch.save(obj, f)
    except OSError as error:
        raise WeightsError(f'{path}: cannot write: {error.strerror or error}') from error
    except RuntimeError as error:  # torch's writer, e.g. on a full disk: 'file write failed'
        raise WeightsError(f'{path}: cannot write: {error}') from error


def save_converted(src, dst, network_opt=None, param_key=None):
    """Converts the weights file ``src`` (its ``param_key``, where given) into a BasicSR checkpoint
    ``dst`` that records its network (``{'params', 'network_g'}``); ``network_opt`` over what ``src``
    says. Returns ``(net, network_g)``."""
    weights = read_weights(src, param_key)
    opt = merged_options(weights, network_opt, src)
    if not opt.get('type'):
        raise WeightsError(f'{src}: the file does not say which network it belongs to; name one with --arch')
    net, opt = build_loaded(src, weights, opt)
    save_atomically({'params': net.state_dict(), 'network_g': opt}, dst)
    return net, opt
