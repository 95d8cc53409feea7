"""The network a command's flags name: ``--weights``, with ``-opt``, ``--arch`` or the deprecated
``--arch-opt`` (``derain``, ``export``)."""
import yaml
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.errors import InvalidOption, OptionsError
from mh2f_plugin.utils.options import network_of, parse_arch_spec
from mh2f_plugin.utils.options_validation import check_component
from mh2f_plugin.weights.loader import load_network


def network_options(args):
    """The network the user named (``-opt``, or ``--arch``, or the deprecated ``--arch-opt``), or
    None, with the flag to name in errors about it."""
    if args.opt:
        return network_of(args.opt), f"{args.opt}: 'network_g'"
    requested = parse_arch_spec(args.arch) if args.arch else {}
    if args.arch_opt is not None:
        try:
            arch_opt = yaml.safe_load(args.arch_opt) or {}
        except yaml.YAMLError as error:
            raise OptionsError(f'--arch-opt {args.arch_opt!r}: not valid YAML') from error
        if not isinstance(arch_opt, dict):
            raise OptionsError(f'--arch-opt must be a YAML mapping, got {args.arch_opt!r}')
        requested.update(arch_opt)
    return requested or None, '--arch-opt' if args.arch_opt is not None else '--arch'


def checked_network(args):
    """``(net, network_g)``: the network and its weights, with option mistakes named as the flags
    that caused them."""
    requested, where = network_options(args)
    if requested and requested.get('type') is not None:
        check_component(requested, ARCH_REGISTRY, 'arch', where=where)
    try:
        return load_network(
            args.weights, requested, args.param_key, default_opt={'type': 'MH2FNet'}, zoo_folder=args.zoo_dir)
    except InvalidOption as error:
        raise OptionsError(f'{where}: {error}') from error
