"""Options files as BasicSR will run them: read, ``--force_yml`` applied, checked, completed.

BasicSR itself fails on a missing key with a bare ``KeyError`` from deep inside its pipeline, on an
unknown ``type`` only once it reaches that component, and applies ``--force_yml`` with ``exec``.
``check_options`` reads the file as BasicSR will, applies ``--force_yml`` the same way but with
one-line errors, and validates the result (``mh2f_plugin.utils.options_validation``) before
BasicSR starts. A key given twice in a file is refused; ``--force_yml`` values are read as YAML
(``mh2f_plugin.compat.force_yml_value``, which BasicSR then uses too).

``with_prepared_options`` wraps BasicSR's own ``parse_options`` so that what it returns is
completed the same way: ``network_g`` from a zoo name, and CPU when CUDA is asked for but absent.
"""
import os
import torch
import yaml
from basicsr.utils.options import ordered_yaml
from collections import OrderedDict

from mh2f_plugin.compat import force_yml_value
from mh2f_plugin.errors import OptionsError
from mh2f_plugin.utils.options_validation import validate
from mh2f_plugin.weights import zoo

CPU_FALLBACK = ('num_gpu is {} but this machine has no CUDA GPU: running on the CPU instead '
                '(set num_gpu: 0, or auto, to say so)')


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


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping of an options file (YAML would keep the last silently)."""

    def __init__(self, key, line, first_line):
        super().__init__(f"{line}: duplicate key '{key}' (first at line {first_line})")


class _OptionsLoader(ordered_yaml()[0]):
    """BasicSR's options loader (ordered dicts) that refuses duplicate keys."""


def _unique_mapping(loader, node):
    lines = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in lines:
            raise DuplicateKey(key, key_node.start_mark.line + 1, lines[key])
        lines[key] = key_node.start_mark.line + 1
    return OrderedDict(loader.construct_pairs(node))


_OptionsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_options(path):
    """The options file as BasicSR reads it (ordered dicts); a key given twice is refused."""
    if not os.path.isfile(path):
        raise OptionsError(f'{path}: options file not found')
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.load(f, Loader=_OptionsLoader)
    except DuplicateKey as error:
        raise OptionsError(f'{path}:{error}; remove one') from error
    except yaml.YAMLError as error:
        raise OptionsError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise OptionsError(f'{path}: cannot read: {error}') from error
    if not isinstance(opt, dict):
        raise OptionsError(f'{path}: expected a mapping of options, found {type(opt).__name__}')
    return opt


def network_of(path):
    """The ``network_g`` of the options file ``path``, as a plain dict."""
    opt = load_options(path)
    if 'network_g' not in opt:
        raise OptionsError(f"{path}: missing key 'network_g'")
    return dict(opt['network_g'])


def apply_force_yml(opt, entries, path):
    """``--force_yml key:key=value ...`` applied as BasicSR applies it (existing parents only)."""
    for entry in entries or ():
        keys, separator, value = entry.partition('=')
        if not separator or not keys.strip():
            raise OptionsError(f'{path}: --force_yml {entry!r}: expected key:key=value')
        node, names = opt, keys.strip().split(':')
        for depth, name in enumerate(names[:-1]):
            if not isinstance(node, dict) or not isinstance(node.get(name), dict):
                raise OptionsError(f"{path}: --force_yml {entry!r}: no section '{':'.join(names[:depth + 1])}' "
                                   'to set a key in (BasicSR cannot create sections)')
            node = node[name]
        if '=' in value:
            raise OptionsError(f"{path}: --force_yml {entry!r}: a value cannot hold '=' (BasicSR splits at each one)")
        try:
            node[names[-1]] = force_yml_value(value.strip())
        except ValueError as error:
            raise OptionsError(f'{path}: --force_yml {entry!r}: {error}') from error
    return opt


def fill_network_from_zoo(opt):
    """``network_g`` from the zoo entry of ``path.pretrain_network_g: zoo:NAME`` when ``opt`` has none."""
    pretrain = (opt.get('path') or {}).get('pretrain_network_g')
    name = zoo.zoo_name(pretrain) if isinstance(pretrain, str) else None
    if not opt.get('network_g') and name:
        opt['network_g'] = dict(zoo.entry(name).arch)
    return opt


def check_options(path, is_train, force_yml=None):
    """``(opt, warnings)``: the options BasicSR will run, checked; ``OptionsError`` otherwise."""
    opt = fill_network_from_zoo(apply_force_yml(load_options(path), force_yml, path))
    warnings = validate(opt, path, is_train)
    if gpus_missing(opt):
        warnings.append(CPU_FALLBACK.format(opt['num_gpu']))
    return opt, warnings


def gpus_missing(opt):
    return opt.get('num_gpu') not in (0, 'auto') and not torch.cuda.is_available()


def with_prepared_options(parse_options):
    """BasicSR's ``parse_options``, then ``network_g`` from the zoo and the CPU fallback."""
    if getattr(parse_options, 'prepares_options', False):
        return parse_options

    def parse(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train=is_train)
        if gpus_missing(opt):
            opt['num_gpu'] = 0
        return fill_network_from_zoo(opt), args

    parse.prepares_options = True
    return parse
