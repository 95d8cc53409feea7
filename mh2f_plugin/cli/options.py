"""Checks a BasicSR options file before BasicSR reads it, so that mistakes end in one clear line.

BasicSR itself fails on a missing key with a bare ``KeyError`` from deep inside its pipeline, and
on an unknown ``type`` only once it reaches that component. ``check_options`` names the file, the
key path (``train:optim_g:type``) and, for an unknown type, the registered alternatives.
"""
import os

import yaml
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY,
                                    MODEL_REGISTRY)

from mh2f_plugin.errors import UserError
from mh2f_plugin.weights import zoo

COMMON_KEYS = ('name', 'model_type', 'num_gpu', 'network_g:type', 'datasets', 'path')
TRAIN_KEYS = ('datasets:train', 'train:total_iter', 'train:optim_g:type', 'train:scheduler:type',
              'logger:print_freq', 'logger:save_checkpoint_freq')
DATASET_KEYS = ('name', 'type')
TRAIN_DATASET_KEYS = ('batch_size_per_gpu', 'num_worker_per_gpu')


class OptionsError(UserError, ValueError):
    """An options file or flag that BasicSR cannot run."""


def parse_arch_spec(spec):
    """``'NAME'`` or ``'NAME:{yaml options}'`` (a command-line network) as ``{'type': NAME, ...}``."""
    name, _, options = spec.partition(':')
    try:
        options = yaml.safe_load(options) if options else {}
    except yaml.YAMLError as error:
        raise OptionsError(f'--arch {spec!r}: the options after ":" are not valid YAML') from error
    if not isinstance(options, dict):
        raise OptionsError(f'--arch {spec!r}: the options after ":" must be a YAML mapping')
    return {'type': name.strip(), **options}


def registered(registry, name):
    """Whether BasicSR's ``registry.get(name)`` finds ``name`` (it also tries ``name_basicsr``)."""
    return name in registry or f'{name}_basicsr' in registry


def load_options(path):
    """The options file as BasicSR reads it (ordered dicts)."""
    if not os.path.isfile(path):
        raise OptionsError(f'{path}: options file not found')
    with open(path, encoding='utf-8') as f:
        try:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
        except yaml.YAMLError as error:
            raise OptionsError(f'{path}: not valid YAML: {error}') from error
    if not isinstance(opt, dict):
        raise OptionsError(f'{path}: expected a mapping of options, found {type(opt).__name__}')
    return opt


def _lookup(opt, key_path):
    node = opt
    for key in key_path.split(':'):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _require(path, opt, key_paths, prefix=''):
    for key_path in key_paths:
        if _lookup(opt, key_path) is None:
            raise OptionsError(f"{path}: missing key '{prefix}{key_path}'")


def _require_type(path, registry, kind, name, key_path):
    if not registered(registry, name):
        known = ', '.join(sorted(registry.keys()))
        raise OptionsError(f"{path}: unknown {kind} '{name}' at '{key_path}'. Registered {kind}s: {known}")


def fill_network_from_zoo(opt):
    """``network_g`` from the zoo entry of ``path.pretrain_network_g: zoo:NAME`` when ``opt`` has none."""
    pretrain = (opt.get('path') or {}).get('pretrain_network_g')
    name = zoo.zoo_name(pretrain) if isinstance(pretrain, str) else None
    if not opt.get('network_g') and name:
        opt['network_g'] = dict(zoo.entry(name).arch)
    return opt


def with_zoo_network(parse_options):
    """BasicSR's ``parse_options`` (``--force_yml`` applied), then ``fill_network_from_zoo``."""
    if getattr(parse_options, 'fills_zoo_network', False):
        return parse_options

    def parse(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train=is_train)
        return fill_network_from_zoo(opt), args

    parse.fills_zoo_network = True
    return parse


def check_options(path, is_train):
    """Raises ``OptionsError`` naming the first missing key or unknown type in ``path``."""
    opt = fill_network_from_zoo(load_options(path))
    _require(path, opt, COMMON_KEYS + (TRAIN_KEYS if is_train else ()))
    _require_type(path, MODEL_REGISTRY, 'model', opt['model_type'], 'model_type')
    for net_key in ('network_g', 'network_d'):
        if opt.get(net_key) is not None:
            _require(path, opt, (f'{net_key}:type', ))
            _require_type(path, ARCH_REGISTRY, 'arch', opt[net_key]['type'], f'{net_key}:type')
    for phase, dataset in opt['datasets'].items():
        prefix = f'datasets:{phase}:'
        _require(path, dataset, DATASET_KEYS, prefix)
        if phase == 'train':
            _require(path, dataset, TRAIN_DATASET_KEYS, prefix)
        _require_type(path, DATASET_REGISTRY, 'dataset', dataset['type'], f'{prefix}type')
    for key, loss in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(loss, dict):
            _require(path, loss, ('type', ), f'train:{key}:')
            _require_type(path, LOSS_REGISTRY, 'loss', loss['type'], f'train:{key}:type')
    val = opt.get('val') or {}
    if is_train and val:
        _require(path, opt, ('val:val_freq', ))
    for name, metric in (val.get('metrics') or {}).items():
        _require(path, metric, ('type', ), f'val:metrics:{name}:')
        _require_type(path, METRIC_REGISTRY, 'metric', metric['type'], f'val:metrics:{name}:type')
    return opt
