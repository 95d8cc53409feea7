"""Entry point of the ``basicsr`` command, and its error boundary.

``basicsr COMMAND ...`` runs one of the commands in ``mh2f_plugin.cli.commands`` with every
installed plugin imported; ``basicsr --help`` lists them, ``basicsr COMMAND --help`` explains one.

Every mistake a user can make ends as one line, ``basicsr <verb>: error: <file>: <what is
wrong>``, and exit status 2: errors of ours that derive from ``UserError`` (also when raised in a
DataLoader worker, where torch wraps them in the worker's traceback) and operating-system errors
(disk full, permissions). Anything else is a bug and keeps its traceback; ``--debug`` (train and
test) or ``MH2F_DEBUG=1`` shows the traceback of every error.
"""
import argparse
import os
import subprocess
import sys

from mh2f_plugin.cli.commands import (compare, convert_weights, derain, export, list_registered, lmdb, test, train, web,
                                      zoo)
from mh2f_plugin.cli.plugins import load_plugins
from mh2f_plugin.errors import user_message
from mh2f_plugin.utils.allocator import keep_freed_memory

COMMANDS = (train, test, derain, lmdb, compare, export, web, convert_weights, zoo, list_registered)


def source_commit(folder):
    """The git commit checked out at ``folder``, or None where it is no git checkout."""
    if not os.path.exists(os.path.join(folder, '.git')):
        return None
    result = subprocess.run(['git', '-C', folder, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True)
    return result.stdout.strip() or None


def basicsr_version(basicsr):
    """BasicSR's version, with its git commit where it runs from a source checkout (GitHub master
    and the 1.4.2 release both say 1.4.2) or recorded one when it was built."""
    commit = source_commit(os.path.dirname(os.path.dirname(basicsr.__file__)))
    commit = commit or (basicsr.__gitsha__ if getattr(basicsr, '__gitsha__', 'unknown') != 'unknown' else None)
    return basicsr.__version__ + (f' (git {commit})' if commit else '')


def version_text():
    """This plugin's version and location, and the versions of BasicSR and torch it runs with."""
    import basicsr
    import torch

    import mh2f_plugin
    return (f'mh2f_plugin {mh2f_plugin.__version__} ({os.path.dirname(mh2f_plugin.__file__)}), '
            f'basicsr {basicsr_version(basicsr)}, torch {torch.__version__}')


def build_parser():
    """The ``basicsr`` parser: one subcommand per module of ``COMMANDS``, described by its docstring."""
    parser = argparse.ArgumentParser(
        prog='basicsr',
        description='BasicSR with every installed plugin (entry-point group basicsr.plugins).',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version', version=version_text())
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for module in COMMANDS:
        command = commands.add_parser(
            module.NAME,
            help=module.__doc__.split('\n', 1)[0],
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = '--debug' in argv or os.environ.get('MH2F_DEBUG', '') not in ('', '0')
    keep_freed_memory()
    args = build_parser().parse_args(argv)
    try:
        load_plugins()
        args.run(args)
    except KeyboardInterrupt:
        print(f'basicsr {args.command}: interrupted', file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (basicsr zoo list | head)
        sys.stdout = open(os.devnull, 'w')
        return 0
    except Exception as error:
        message = user_message(error)
        if message is None or debug:
            raise
        print(f'basicsr {args.command}: error: {message}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
