"""Entry point of the ``basicsr`` command.

``basicsr train|test -opt FILE.yml [BasicSR flags]`` runs BasicSR's own ``train_pipeline`` /
``test_pipeline`` with every installed plugin imported and experiment folders under the
current directory. ``basicsr list`` prints what is registered.
"""
import argparse
import os
import sys

from mh2f_plugin import compat
from mh2f_plugin.cli.options import OptionsError, check_options
from mh2f_plugin.cli.plugins import PluginError, load_plugins

PIPELINE_HELP = ('BasicSR flags: -opt FILE.yml [--launcher none|pytorch|slurm] [--auto_resume] [--debug] '
                 '[--local_rank N] [--force_yml key:key=value ...]')


def _options_path(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    return parser.parse_known_args(argv)[0].opt


def run_pipeline(command, argv):
    """Checks the options file, then hands ``argv`` to BasicSR's pipeline for ``command``."""
    argv = compat.normalize_launcher_args(argv)
    opt_path = _options_path(argv)
    if opt_path is not None:
        check_options(opt_path, is_train=command == 'train')
    if command == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    sys.argv = [f'basicsr {command}'] + argv
    pipeline(os.getcwd())


def list_registrations(argv):
    from mh2f_plugin.cli.registrations import format_registrations, registrations
    argparse.ArgumentParser(prog='basicsr list', description='Print every registered component.').parse_args(argv)
    print(format_registrations(registrations()))


COMMANDS = {
    'train': ('train a network with BasicSR\'s train_pipeline. ' + PIPELINE_HELP,
              lambda argv: run_pipeline('train', argv)),
    'test': ('test a network with BasicSR\'s test_pipeline. ' + PIPELINE_HELP, lambda argv: run_pipeline('test', argv)),
    'list': ('list registered archs, losses, datasets, models and metrics', list_registrations),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog='basicsr', description='BasicSR with every installed plugin (entry-point group basicsr.plugins).')
    parser.add_argument('command', choices=sorted(COMMANDS), help='; '.join(f'{k}: {v[0]}' for k, v in COMMANDS.items()))
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
        parser.parse_args(argv[:1])
    try:
        load_plugins()
        COMMANDS[argv[0]][1](argv[1:])
    except (OptionsError, PluginError) as error:
        print(f'basicsr {argv[0]}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
