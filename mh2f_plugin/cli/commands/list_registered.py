"""List every registered arch, loss, dataset, model and metric, with the package it comes from.

    basicsr list
"""
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

NAME = 'list'
REGISTRIES = {
    'arch': ARCH_REGISTRY,
    'loss': LOSS_REGISTRY,
    'dataset': DATASET_REGISTRY,
    'model': MODEL_REGISTRY,
    'metric': METRIC_REGISTRY,
}


def registrations():
    """``{kind: [(name, package), ...]}`` sorted by name, ``package`` the top-level module."""
    return {
        kind: sorted((name, obj.__module__.split('.')[0]) for name, obj in registry)
        for kind, registry in REGISTRIES.items()
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
    """``basicsr list`` takes no arguments."""


def run(args):
    print(format_registrations(registrations()))
