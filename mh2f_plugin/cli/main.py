"""Entry point of the ``basicsr`` command, and its error boundary.

``basicsr train|test -opt FILE.yml [BasicSR flags]`` runs BasicSR's own ``train_pipeline`` /
``test_pipeline`` with every installed plugin imported and experiment folders under the
current directory; ``basicsr test`` ends with a table of the metrics per dataset. The other
commands are listed by ``basicsr --help``.

Every mistake a user can make ends as one line, ``basicsr <verb>: error: <file>: <what is
wrong>``, and exit status 2: errors of ours that derive from ``UserError`` (also when raised in a
DataLoader worker, where torch wraps them in the worker's traceback) and operating-system errors
(disk full, permissions). Anything else is a bug and keeps its traceback; ``--debug`` (train and
test) or ``MH2F_DEBUG=1`` shows the traceback of every error.
"""
import argparse
import csv
import os
import sys

from mh2f_plugin import compat
from mh2f_plugin.cli.allocator import keep_freed_memory
from mh2f_plugin.cli.compare import compare_networks
from mh2f_plugin.cli.convert_weights import convert_weights
from mh2f_plugin.cli.derain import derain
from mh2f_plugin.cli.lmdb import convert_to_lmdb
from mh2f_plugin.cli.options import check_options, with_prepared_options
from mh2f_plugin.cli.plugins import load_plugins
from mh2f_plugin.cli.registrations import format_registrations, registrations
from mh2f_plugin.cli.zoo import run_zoo
from mh2f_plugin.errors import InvalidOption, OptionsError, UserError
from mh2f_plugin.models.derain_model import METRICS_FILE

PIPELINE_HELP = ('BasicSR flags: -opt FILE.yml [--launcher none|pytorch|slurm] [--auto_resume] [--debug] '
                 '[--local_rank N] [--force_yml key:key=value ...]')
WORKER_TRACEBACK = 'Original Traceback (most recent call last):'


def _pipeline_args(argv):
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+')
    return parser.parse_known_args(argv)[0]


def run_pipeline(command, argv):
    """Checks the options as BasicSR will run them, then hands ``argv`` to BasicSR's pipeline."""
    argv = compat.normalize_launcher_args(argv)
    known = _pipeline_args(argv)
    opt = None
    if known.opt is not None:
        opt, warnings = check_options(known.opt, is_train=command == 'train', force_yml=known.force_yml)
        for warning in warnings:
            print(f'basicsr {command}: warning: {known.opt}: {warning}', file=sys.stderr)
    import basicsr.test
    import basicsr.train
    module = basicsr.train if command == 'train' else basicsr.test
    module.parse_options = with_prepared_options(module.parse_options)
    sys.argv = [f'basicsr {command}'] + argv
    try:
        (module.train_pipeline if command == 'train' else module.test_pipeline)(os.getcwd())
    except InvalidOption as error:  # a component refused a value: say in which file it was
        raise OptionsError(f'{known.opt}: {error}') from error
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
    'train':
    ('train a network with BasicSR\'s train_pipeline. ' + PIPELINE_HELP, lambda argv: run_pipeline('train', argv)),
    'test': ('test a network with BasicSR\'s test_pipeline. ' + PIPELINE_HELP, lambda argv: run_pipeline('test', argv)),
    'derain': ('derain photos without ground truth: basicsr derain INPUT OUTPUT --weights W.pth', derain),
    'lmdb': ('convert a dataset to LMDB: basicsr lmdb SRC OUT; check one: basicsr lmdb --verify OUT', convert_to_lmdb),
    'compare':
    ('compare registered restorers on one dataset: basicsr compare --arch A --arch B --data DIR', compare_networks),
    'convert-weights':
    ('convert an official checkpoint to BasicSR\'s format: basicsr convert-weights SRC DST', convert_weights),
    'zoo': ('published checkpoints by name: basicsr zoo list; basicsr zoo get NAME...', run_zoo),
    'list': ('list registered archs, losses, datasets, models and metrics', list_registrations),
}


def user_message(error):
    """The one-line message of an error the user caused, or None for a bug of ours."""
    if isinstance(error, OSError) and not isinstance(error, UserError) and error.strerror:
        where = error.filename or 'disk'
        return f'{where}: {error.strerror}'
    if not isinstance(error, UserError):
        return None
    text = str(error)
    if WORKER_TRACEBACK in text:  # raised in a DataLoader worker: keep the original message only
        last = [line for line in text.splitlines() if line.strip() and not line.startswith(' ')][-1]
        text = last.split(': ', 1)[1] if ': ' in last else last
    return ' '.join(text.split())


def version_text():
    """This plugin's version and location, and the versions of BasicSR and torch it runs with."""
    import basicsr
    import torch

    import mh2f_plugin
    return (f'mh2f_plugin {mh2f_plugin.__version__} ({os.path.dirname(mh2f_plugin.__file__)}), '
            f'basicsr {basicsr.__version__}, torch {torch.__version__}')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog='basicsr', description='BasicSR with every installed plugin (entry-point group basicsr.plugins).')
    parser.add_argument(
        'command', choices=sorted(COMMANDS), help='; '.join(f'{name}: {text}' for name, (text, _) in COMMANDS.items()))
    parser.add_argument('--version', action='version', version=version_text())
    if not argv or argv[0] in ('-h', '--help', '--version') or argv[0] not in COMMANDS:
        parser.parse_args(argv[:1])
    debug = '--debug' in argv or os.environ.get('MH2F_DEBUG', '') not in ('', '0')
    keep_freed_memory()
    try:
        load_plugins()
        COMMANDS[argv[0]][1](argv[1:])
    except KeyboardInterrupt:
        print(f'basicsr {argv[0]}: interrupted', file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (basicsr zoo list | head)
        sys.stdout = open(os.devnull, 'w')
        return 0
    except Exception as error:
        message = user_message(error)
        if message is None or debug:
            raise
        print(f'basicsr {argv[0]}: error: {message}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
