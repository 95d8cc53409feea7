"""Entry point of the ``basicsr`` command.

``basicsr train|test -opt FILE.yml [BasicSR flags]`` runs BasicSR's own ``train_pipeline`` /
``test_pipeline`` with every installed plugin imported and experiment folders under the
current directory; ``basicsr test`` ends with a table of the metrics per dataset.
``basicsr derain`` restores photos without ground truth; ``basicsr list`` prints what is
registered.
"""
import argparse
import csv
import os
import sys

from mh2f_plugin import compat
from mh2f_plugin.cli.compare import compare_networks
from mh2f_plugin.cli.convert_weights import convert_weights
from mh2f_plugin.cli.derain import derain
from mh2f_plugin.cli.lmdb import convert_to_lmdb
from mh2f_plugin.cli.options import OptionsError, check_options, with_zoo_network
from mh2f_plugin.cli.plugins import PluginError, load_plugins
from mh2f_plugin.cli.registrations import format_registrations, registrations
from mh2f_plugin.cli.zoo import run_zoo
from mh2f_plugin.data.image_io import ImageReadError
from mh2f_plugin.data.layouts import LayoutError
from mh2f_plugin.errors import UserError
from mh2f_plugin.models.derain_model import METRICS_FILE, NonFiniteLossError

USER_ERRORS = (UserError, OptionsError, PluginError, LayoutError, ImageReadError, NonFiniteLossError)

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
    opt = check_options(opt_path, is_train=command == 'train') if opt_path is not None else None
    import basicsr.test
    import basicsr.train
    module = basicsr.train if command == 'train' else basicsr.test
    module.parse_options = with_zoo_network(module.parse_options)
    sys.argv = [f'basicsr {command}'] + argv
    (module.train_pipeline if command == 'train' else module.test_pipeline)(os.getcwd())
    metrics = os.path.join(os.getcwd(), 'results', opt['name'], METRICS_FILE) if opt else ''
    if command == 'test' and os.path.isfile(metrics):
        print(metrics_table(metrics))


def metrics_table(path):
    """The metrics CSV written by ``DerainModel`` as a Markdown table."""
    with open(path, newline='', encoding='utf-8') as f:
        rows = list(csv.reader(f))
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines.insert(1, '|' + ' --- |' * len(rows[0]))
    return '\n'.join(lines) + f'\n(written to {path})'


def list_registrations(argv):
    argparse.ArgumentParser(prog='basicsr list', description='Print every registered component.').parse_args(argv)
    print(format_registrations(registrations()))


COMMANDS = {
    'train': ('train a network with BasicSR\'s train_pipeline. ' + PIPELINE_HELP,
              lambda argv: run_pipeline('train', argv)),
    'test': ('test a network with BasicSR\'s test_pipeline. ' + PIPELINE_HELP, lambda argv: run_pipeline('test', argv)),
    'derain': ('derain photos without ground truth: basicsr derain INPUT OUTPUT --weights W.pth', derain),
    'lmdb': ('convert a dataset to LMDB: basicsr lmdb SRC OUT; check one: basicsr lmdb --verify OUT',
             convert_to_lmdb),
    'compare': ('compare registered restorers on one dataset: basicsr compare --arch A --arch B --data DIR',
                compare_networks),
    'convert-weights': ('convert an official checkpoint to BasicSR\'s format: basicsr convert-weights SRC DST',
                        convert_weights),
    'zoo': ('published checkpoints by name: basicsr zoo list; basicsr zoo get NAME...', run_zoo),
    'list': ('list registered archs, losses, datasets, models and metrics', list_registrations),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog='basicsr', description='BasicSR with every installed plugin (entry-point group basicsr.plugins).')
    parser.add_argument('command', choices=sorted(COMMANDS),
                        help='; '.join(f'{name}: {text}' for name, (text, _) in COMMANDS.items()))
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
        parser.parse_args(argv[:1])
    try:
        load_plugins()
        COMMANDS[argv[0]][1](argv[1:])
    except USER_ERRORS as error:
        print(f'basicsr {argv[0]}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
