"""What an options file must hold, checked on the options BasicSR will run (``--force_yml`` applied).

``validate(opt, path, is_train)`` raises ``OptionsError`` for the first mistake, naming the file,
the key path (``train:optim_g:lr``) and what is wrong, and returns warnings (unknown keys in this
plugin's own components, likely typos). It checks: required keys; the types and ranges of the
keys BasicSR and this plugin read; registered ``type`` names; network and loss arguments against
their constructors (with a "did you mean"); dataset folders and weights files that must exist.
"""
import difflib
import inspect
import numbers
import os
import re
import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from mh2f_plugin.errors import InvalidOption, OptionsError
from mh2f_plugin.weights import zoo
from mh2f_plugin.weights.checkpoint import PARAM_KEYS, read_checkpoint

COMMON_KEYS = ('name', 'model_type', 'num_gpu', 'network_g:type', 'datasets', 'path')
TRAIN_KEYS = ('datasets:train', 'train:total_iter', 'train:optim_g:type', 'train:scheduler:type', 'logger:print_freq',
              'logger:save_checkpoint_freq')
DATASET_KEYS = ('name', 'type', 'io_backend:type')
TRAIN_DATASET_KEYS = ('batch_size_per_gpu', 'num_worker_per_gpu')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(value):
    return None if _is_int(value) and value > 0 else 'a positive integer'


def non_negative_int(value):
    return None if _is_int(value) and value >= 0 else 'an integer >= 0'


def integer(value):
    return None if _is_int(value) else 'an integer'


def positive_number(value):
    return None if _is_number(value) and value > 0 else 'a positive number (write 1e-3 as !!float 1e-3 or 0.001)'


def number(value):
    return None if _is_number(value) else 'a number'


def boolean(value):
    return None if isinstance(value, bool) else 'true or false'


def string(value):
    return None if isinstance(value, str) else 'a string'


def numbers_list(value):
    return None if isinstance(value, list) and all(_is_number(v) for v in value) else 'a list of numbers'


def choice(*allowed):

    def check(value):
        return None if value in allowed else 'one of ' + ', '.join('~' if a is None else str(a) for a in allowed)

    return check


def optional(check):

    def check_optional(value):
        return None if value is None else check(value)

    return check_optional


def folder_name(value):
    """A name BasicSR makes folders of (experiments/NAME, results/NAME): one plain path component."""
    plain = isinstance(value, str) and value not in ('', '.', '..') and not set(value) & {'/', '\\'}
    return None if plain else 'a plain folder name (no /, not . or ..)'


def gpus(value):
    return None if value == 'auto' or (_is_int(value) and value >= 0) else 'auto or an integer >= 0'


ABSENT = object()  # a key the options do not have (``None`` is an explicit ``~``)

# Key paths ('*' is any dataset phase) and what their values must be, when present.
TYPES = {
    'name': folder_name,
    'model_type': string,
    'num_gpu': gpus,
    'manual_seed': optional(integer),
    'amp': choice(None, 'bf16', 'fp16', 'auto'),
    'channels_last': choice(True, False, 'auto'),
    'winograd': choice(True, False, 'auto'),
    'engine': choice('auto', 'torch', 'onnxruntime', 'openvino'),
    'datasets:*:name': string,
    'datasets:*:type': string,
    'datasets:*:batch_size_per_gpu': positive_int,
    'datasets:*:num_worker_per_gpu': non_negative_int,
    'datasets:*:gt_size': positive_int,
    'datasets:*:dataset_enlarge_ratio': positive_int,
    'datasets:*:use_hflip': boolean,
    'datasets:*:use_rot': boolean,
    'datasets:*:io_backend:type': choice('disk', 'lmdb'),
    'path:strict_load_g': boolean,
    'path:param_key_g': optional(string),
    'path:pretrain_network_g': optional(string),
    'path:resume_state': optional(string),
    'train:total_iter': positive_int,
    'train:warmup_iter': integer,
    'train:ema_decay': number,
    'train:optim_g:type': string,
    'train:optim_g:lr': positive_number,
    'train:optim_g:betas': numbers_list,
    'train:optim_g:weight_decay': number,
    'train:scheduler:type': string,
    'train:scheduler:milestones': numbers_list,
    'train:scheduler:gamma': positive_number,
    'val:val_freq': positive_int,
    'val:save_img': boolean,
    'val:pbar': boolean,
    'val:tile': optional(positive_int),
    'val:tile_overlap': non_negative_int,
    'val:self_ensemble': boolean,
    'val:pad_multiple': optional(positive_int),
    'logger:print_freq': positive_int,
    'logger:save_checkpoint_freq': positive_int,
    'logger:use_tb_logger': boolean,
}

# Option keys of this plugin's datasets and of DerainModel's val section: others are warned about.
VAL_KEYS = ('val_freq', 'save_img', 'suffix', 'pbar', 'metrics', 'tile', 'tile_overlap', 'self_ensemble',
            'pad_multiple')


def lookup(opt, key_path, default=None):
    """The value at ``a:b:c`` in nested dicts, or ``default`` when a key on the way is absent."""
    node = opt
    for key in key_path.split(':'):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def registered(registry, name):
    """Whether BasicSR's ``registry.get(name)`` finds ``name`` (it also tries ``name_basicsr``)."""
    return isinstance(name, str) and (name in registry or f'{name}_basicsr' in registry)


def did_you_mean(word, candidates):
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ''


def accepted_arguments(cls):
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up to the base classes;
    None when some class takes arbitrary keywords that reach no named parameter."""
    names = set()
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)['__init__']).parameters
        names |= {n for n, p in parameters.items() if n != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            return names
        if klass.__mro__[1].__init__ is object.__init__ or klass.__mro__[1].__module__.startswith('torch'):
            return None
    return names


# Arguments that are widths or counts of channels: positive integers, checked before torch sees them.
WIDTH = re.compile(r'num_feat|num_(in|out)_ch|.*channels|.*_dim|growth|num_grow_ch|mid_channels')


def check_registered(registry, kind, name, where, at=''):
    """Raises ``OptionsError`` ``"{where}: unknown {kind} 'NAME'{at}; did you mean ...? Registered
    {kind}s: ..."`` unless ``name`` is registered; ``at`` names the key (`` at 'network_g:type'``)."""
    if not registered(registry, name):
        raise OptionsError(f"{where}: unknown {kind} '{name}'{at}{did_you_mean(str(name), registry.keys())}. "
                           f"Registered {kind}s: {', '.join(sorted(registry.keys()))}")


def check_component(options, registry, kind, where):
    """Raises ``OptionsError`` ``"{where}: ..."`` unless ``options['type']`` is registered and takes
    every other key of ``options`` as an argument. This plugin's own components are also built, on
    the meta device (no memory, no weights), so that a value they refuse is named now, not after
    BasicSR has set up the run."""
    name = options.get('type')
    check_registered(registry, kind, name, where=where)
    cls = registry.get(name)
    accepted = accepted_arguments(cls)
    unknown = [
        argument for argument in options if argument != 'type' and accepted is not None and argument not in accepted
    ]
    if unknown:
        raise OptionsError(f"{where}: {name} has no argument '{unknown[0]}'{did_you_mean(unknown[0], accepted)} "
                           f"(it takes {', '.join(sorted(accepted))})")
    for argument, value in options.items():
        if WIDTH.fullmatch(argument) and value is not None and positive_int(value):
            raise OptionsError(f'{where}: {name}: {argument} must be a positive integer, got {value!r}')
    if cls.__module__.startswith('mh2f_plugin.'):
        try:
            with torch.device('meta'):
                cls(**{k: v for k, v in options.items() if k != 'type'})
        except (InvalidOption, TypeError, ValueError, RuntimeError) as error:
            raise OptionsError(f'{where}: {error}') from error


class Validator:
    """Collects warnings while checking one options file."""

    def __init__(self, path, opt):
        self.path, self.opt, self.warnings = path, opt, []

    def fail(self, message):
        raise OptionsError(f'{self.path}: {message}')

    def require(self, key_paths, node=None, prefix=''):
        for key_path in key_paths:
            if lookup(self.opt if node is None else node, key_path) is None:
                self.fail(f"missing key '{prefix}{key_path}'")

    def require_type(self, registry, kind, name, key_path):
        check_registered(registry, kind, name, where=self.path, at=f" at '{key_path}'")

    def check_types(self):
        phases = list((self.opt.get('datasets') or {}))
        for pattern, check in TYPES.items():
            paths = [pattern.replace('*', phase) for phase in phases] if '*' in pattern else [pattern]
            for key_path in paths:
                value = lookup(self.opt, key_path, ABSENT)
                if value is ABSENT:
                    continue
                problem = check(value)
                if problem:
                    self.fail(f"'{key_path}' must be {problem}, got {value!r}")

    def check_dataset(self, phase, dataset):
        prefix = f'datasets:{phase}:'
        cls = DATASET_REGISTRY.get(dataset['type'])
        known = getattr(cls, 'OPTIONS', None)
        if known is not None:
            for name in dataset:
                if name not in known and name != 'phase':
                    self.warnings.append(f"'{prefix}{name}' is not an option of {dataset['type']}, ignored"
                                         f'{did_you_mean(name, known)}')
        for key in ('dataroot', 'dataroot_gt', 'dataroot_lq'):
            root = dataset.get(key)
            if isinstance(root, str) and not os.path.exists(os.path.expanduser(root)):
                self.fail(f"'{prefix}{key}': {root}: no such folder")

    def check_weights(self):
        """Weights and states named in ``path`` exist and are readable torch files (BasicSR's own
        loader, for models other than DerainModel, would end in a traceback otherwise)."""
        for key in ('pretrain_network_g', 'resume_state'):
            value = lookup(self.opt, f'path:{key}')
            if not isinstance(value, str):
                continue
            if key == 'pretrain_network_g' and not os.path.exists(value) and zoo.zoo_name(value):
                zoo.entry(zoo.zoo_name(value))  # an unknown name fails here, with the close ones
                continue
            if not os.path.isfile(os.path.expanduser(value)):
                self.fail(f"'path:{key}': {value}: file not found")
            checkpoint = read_checkpoint(os.path.expanduser(value))
            if key == 'pretrain_network_g':
                self.check_param_key(checkpoint, value)

    def check_resume_target(self):
        """BasicSR resumes into ``experiments/NAME`` without creating it: a state of another
        experiment ended in a missing-file error about the options file's copy."""
        state = lookup(self.opt, 'path:resume_state')
        root = os.path.join(os.getcwd(), 'experiments', self.opt['name'])
        if isinstance(state, str) and not os.path.isdir(root):
            owner = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(state))))
            self.fail(f"'path:resume_state': {state} is a state of experiment '{owner}', and BasicSR resumes into "
                      f'{root}, which does not exist; set name: {owner}, or start a new run from its weights with '
                      'path:pretrain_network_g')

    def check_param_key(self, checkpoint, path):
        """An explicit ``path:param_key_g`` that the checkpoint lacks (BasicSR would take another)."""
        param_key = lookup(self.opt, 'path:param_key_g')
        held = [key for key in PARAM_KEYS if isinstance(checkpoint, dict) and key in checkpoint]
        if isinstance(param_key, str) and held and param_key not in held:
            self.fail(f"'path:param_key_g': {path} has no '{param_key}' (it has {', '.join(held)}); "
                      f"set param_key_g: {held[0]}")

    def check_val_keys(self):
        val = self.opt.get('val') or {}
        for name in val:
            if name not in VAL_KEYS:
                self.warnings.append(f"'val:{name}' is not a validation option, ignored{did_you_mean(name, VAL_KEYS)}")


def validate(opt, path, is_train):
    """Raises ``OptionsError`` for the first mistake in ``opt`` (read from ``path``); returns warnings."""
    check = Validator(path, opt)
    check.require(COMMON_KEYS + (TRAIN_KEYS if is_train else ()))
    if not isinstance(opt['datasets'], dict) or not opt['datasets']:
        check.fail("'datasets' must map phases (train, val, test_1, ...) to datasets")
    if not is_train and not opt.get('val'):
        check.fail("missing key 'val' (basicsr test needs it: save_img and the metrics)")
    check.check_types()
    check.require_type(MODEL_REGISTRY, 'model', opt['model_type'], key_path='model_type')
    for net_key in ('network_g', 'network_d'):
        if opt.get(net_key) is not None:
            check.require((f'{net_key}:type', ))
            check.require_type(ARCH_REGISTRY, 'arch', opt[net_key]['type'], key_path=f'{net_key}:type')
            check_component(opt[net_key], ARCH_REGISTRY, 'arch', where=f"{path}: '{net_key}'")
    for phase, dataset in opt['datasets'].items():
        prefix = f'datasets:{phase}:'
        if not isinstance(dataset, dict):
            check.fail(f"'datasets:{phase}' must be a mapping of dataset options")
        check.require(DATASET_KEYS, dataset, prefix)
        if phase == 'train':
            check.require(TRAIN_DATASET_KEYS, dataset, prefix)
        check.require_type(DATASET_REGISTRY, 'dataset', dataset['type'], key_path=f'{prefix}type')
        check.check_dataset(phase, dataset)
    for key, loss in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(loss, dict):
            check.require(('type', ), loss, f'train:{key}:')
            check.require_type(LOSS_REGISTRY, 'loss', loss['type'], key_path=f'train:{key}:type')
            check_component(loss, LOSS_REGISTRY, 'loss', where=f"{path}: 'train:{key}'")
    val = opt.get('val') or {}
    if is_train and val:
        check.require(('val:val_freq', ))
    for name, metric in (val.get('metrics') or {}).items():
        check.require(('type', ), metric, f'val:metrics:{name}:')
        check.require_type(METRIC_REGISTRY, 'metric', metric['type'], key_path=f'val:metrics:{name}:type')
    if opt['model_type'] == 'DerainModel':
        check.check_val_keys()
    check.check_weights()
    if is_train:
        check.check_resume_target()
    return check.warnings
