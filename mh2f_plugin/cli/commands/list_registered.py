"""List the registered archs, losses, datasets, models and metrics, with the package each comes from.

    basicsr list                   every registry
    basicsr list archs             one kind: archs, losses, datasets, models or metrics
    basicsr list archs 'prenet*'   names matching a pattern (case-insensitive; a plain word matches
    basicsr list rain              anywhere in the name), in one kind or in all
"""
import fnmatch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from mh2f_plugin.errors import OptionsError

NAME = 'list'
REGISTRIES = {
    'arch': ARCH_REGISTRY,
    'loss': LOSS_REGISTRY,
    'dataset': DATASET_REGISTRY,
    'model': MODEL_REGISTRY,
    'metric': METRIC_REGISTRY,
}
KINDS = {'archs': 'arch', 'losses': 'loss', 'datasets': 'dataset', 'models': 'model', 'metrics': 'metric'}


def registrations(kinds=tuple(REGISTRIES), pattern=None):
    """``{kind: [(name, package), ...]}`` sorted by name, ``package`` the top-level module; only
    names matching ``pattern`` (``fnmatch``, case-insensitive; without wildcards, a substring)."""
    if pattern and not any(char in pattern for char in '*?['):
        pattern = f'*{pattern}*'
    return {
        kind:
        sorted((name, obj.__module__.split('.')[0]) for name, obj in REGISTRIES[kind]
               if not pattern or fnmatch.fnmatch(name.lower(), pattern.lower()))
        for kind in kinds
    }


def format_registrations(table):
    """The listing printed by ``basicsr list``: one block per registry, one line per entry."""
    lines = []
    for kind, entries in table.items():
        width = max((len(name) for name, _ in entries), default=0)
        lines.append(f'{kind} ({len(entries)}):')
        lines += [f'  {name:<{width}}  {package}' for name, package in entries]
    return '\n'.join(lines)


def add_arguments(parser):
    parser.add_argument(
        'words',
        nargs='*',
        metavar='[KIND] [PATTERN]',
        help=f"KIND: {', '.join(KINDS)} (or the singular); PATTERN: a name or a pattern such as 'PReNet*'")


def selection(words):
    """``(kinds, pattern)`` from ``basicsr list``'s words: an optional kind, then an optional pattern."""
    kind = KINDS.get(words[0].lower(), words[0].lower()) if words else None
    if kind in REGISTRIES:
        kinds, rest = (kind, ), words[1:]
    else:
        kinds, rest = tuple(REGISTRIES), words
    if len(rest) > 1:
        raise OptionsError(f"list takes a kind ({', '.join(KINDS)}) and one name pattern; got {' '.join(words)!r}")
    return kinds, rest[0] if rest else None


def run(args):
    kinds, pattern = selection(args.words)
    table = registrations(kinds, pattern)
    if pattern and not any(table.values()):
        among = f'{kinds[0]}s' if len(kinds) == 1 else f"any registry (the kinds are {', '.join(KINDS)})"
        raise OptionsError(f'list: no name matches {pattern!r} in {among}')
    print(format_registrations(table))
