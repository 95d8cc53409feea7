"""BasicSR's own ``train_pipeline`` and ``test_pipeline``, run on options checked beforehand.

The flags are BasicSR's: ``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``,
``--local_rank`` (also spelled ``--local-rank``, as torch's launchers pass it) and
``--force_yml``. The options are checked as BasicSR will run them (``--force_yml`` applied)
before BasicSR starts, so that a mistake ends in one line naming the file and the key.
"""
import contextlib
import fcntl
import os
import sys

from mh2f_plugin.cli.flags import add_options_file
from mh2f_plugin.errors import InvalidOption, OptionsError
from mh2f_plugin.utils.options import check_options, with_prepared_options

# What each distributed launcher sets before BasicSR reads it.
LAUNCHER_VARIABLES = {'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'), 'slurm': ('SLURM_PROCID', )}


def add_pipeline_arguments(parser):
    """BasicSR's flags (``basicsr/utils/options.py``), with one help text each."""
    add_options_file(parser, help='the options file to run')
    parser.add_argument('--launcher', choices=('none', 'pytorch', 'slurm'), default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true', help='continue from the newest complete state')
    parser.add_argument('--debug', action='store_true', help="BasicSR's debug mode; tracebacks for every error")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help='set by distributed launchers')
    parser.add_argument(
        '--force_yml', nargs='+', metavar='KEY:KEY=VALUE', help='change existing options, e.g. train:total_iter=100')


def basicsr_argv(args):
    """The command line BasicSR's own parser reads, from the parsed flags."""
    argv = ['-opt', args.opt, '--launcher', args.launcher, '--local_rank', str(args.local_rank)]
    argv += ['--auto_resume'] * args.auto_resume + ['--debug'] * args.debug
    return argv + (['--force_yml', *args.force_yml] if args.force_yml else [])


@contextlib.contextmanager
def experiment_lock(name):
    """Holds ``experiments/.NAME.lock`` (flock) while this process trains ``NAME``: a second
    ``basicsr train`` of the same name refuses at once, where BasicSR would archive the live run's
    folder and let both write into one. Only the first process of a distributed run takes it."""
    if int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))) != 0:
        yield
        return
    folder = os.path.join(os.getcwd(), 'experiments')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f'.{name}.lock'), 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionsError(f"{os.path.join(folder, name)}: another basicsr train of '{name}' is running; "
                               'wait for it, or give this run another name') from None
        yield


def run_pipeline(command, args):
    """Checks the options, then runs BasicSR's pipeline of ``command`` (train or test) on them;
    returns the checked options."""
    if args.opt is None:
        raise OptionsError(f'basicsr {command} needs -opt FILE.yml')
    missing = [name for name in LAUNCHER_VARIABLES.get(args.launcher, ()) if name not in os.environ]
    if missing:
        raise OptionsError(f"--launcher {args.launcher}: {', '.join(missing)} not set; start the command with "
                           f"{'torchrun' if args.launcher == 'pytorch' else 'srun'} (docs/training.md)")
    opt, warnings = check_options(args.opt, is_train=command == 'train', force_yml=args.force_yml)
    for warning in warnings:
        print(f'basicsr {command}: warning: {args.opt}: {warning}', file=sys.stderr)
    import basicsr.test
    import basicsr.train
    module = basicsr.train if command == 'train' else basicsr.test
    module.parse_options = with_prepared_options(module.parse_options)
    sys.argv = [f'basicsr {command}'] + basicsr_argv(args)
    try:
        if command == 'train':
            with experiment_lock(opt['name']):
                module.train_pipeline(os.getcwd())
        else:
            module.test_pipeline(os.getcwd())
    except InvalidOption as error:  # a component refused a value: say in which file it was
        raise OptionsError(f'{args.opt}: {error}') from error
    return opt
