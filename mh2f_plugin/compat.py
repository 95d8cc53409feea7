"""Fixes for what BasicSR 1.4.2 (2022, the latest release) gets wrong on today's stack.

Each fix names the symptom it cures; ``apply()`` installs all of them once. The torchvision shim
must be in place before the first ``import basicsr``, so this module imports BasicSR only inside
``apply()``. Before installing anything, ``expect_code`` checks that BasicSR's code is still the
1.4.2 code each fix was written for, and fails loudly if not.

Most fixes wrap BasicSR's function and call it unchanged:

- ``_with_val_defaults`` (``parse_options``): ``val.suffix`` defaults to none;
- ``_with_integer_quality`` (``add_jpg_compression``): the JPEG quality rounded to an int;
- ``_with_full_batches`` (``create_train_val_dataloader``): epochs planned from the loader's
  real length, and BasicSR's statistics logged with that count instead of its own;
- ``_gpu_or_cpu`` (``_init_dist_pytorch``, ``_init_dist_slurm``): BasicSR's initialiser with a
  GPU, a CPU one (gloo) without;
- ``model_to_device``: BasicSR's method for GPU models, DDP without ``device_ids`` on the CPU.

``force_yml_value`` replaces ``basicsr.utils.options._postprocess_yml_value``, which evaluates
``--force_yml`` lists with Python's ``eval``: values are read as YAML instead.

Two are rewritten copies, because the line to fix sits in the middle of BasicSR's function:

- ``load_resume_state`` replaces ``basicsr.train.load_resume_state`` on every device: BasicSR
  maps the state to ``torch.cuda.current_device()`` (no CPU resume) and, with ``auto_resume``,
  takes the highest-numbered state even when it is truncated; ours maps to the model's device
  and takes the newest state that loads with its checkpoint.
- ``_init_dist_slurm_cpu`` copies the environment set-up of BasicSR's ``_init_dist_slurm``,
  without its ``rank % torch.cuda.device_count()``, and is used only when there is no GPU.

docs/basicsr-compat.md lists each fix with the BasicSR file and line it cures.
"""
import inspect
import logging
import math
import os
import re
import sys
import torch
import torch.distributed as dist
import types
import yaml
from torch.nn.parallel import DistributedDataParallel

from mh2f_plugin.errors import CheckpointError, DatasetError

_applied = False
_original_model_to_device = None


def install_functional_tensor_shim():
    """``import basicsr`` fails: ``No module named 'torchvision.transforms.functional_tensor'``.

    ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from a module that
    torchvision 0.17 removed (BasicSR issues #533, #663). Register a module of that name that
    re-exports the function from its current home.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        __import__(name)
    except ImportError:
        from torchvision.transforms.functional import rgb_to_grayscale
        shim = types.ModuleType(name)
        shim.rgb_to_grayscale = rgb_to_grayscale
        sys.modules[name] = shim


def _resume_device(opt):
    """The device a resume state is loaded onto: the current GPU, or the CPU when there is none."""
    if opt['num_gpu'] != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def _newest_complete_state(state_dir, device):
    """``(path, state)`` of the newest training state in ``state_dir`` that loads and whose
    ``net_g`` checkpoint loads too; others (truncated, foreign names) are skipped with a warning."""
    from basicsr.utils import scandir

    # not get_root_logger(): that would set the logger up before BasicSR gives it its log file
    logger = logging.getLogger('basicsr')
    candidates = []
    for name in scandir(state_dir, suffix='.state'):
        stem = name[:-len('.state')]
        if stem.isdigit():
            candidates.append(int(stem))
        else:
            logger.warning(f'{os.path.join(state_dir, name)}: not a training state of this run (name); skipped')
    models = os.path.join(os.path.dirname(state_dir), 'models')
    for it in sorted(candidates, reverse=True):
        path = os.path.join(state_dir, f'{it}.state')
        try:
            state = torch.load(path, map_location=device, weights_only=True)
            torch.load(os.path.join(models, f'net_g_{it}.pth'), map_location='cpu', weights_only=True)
            return path, state
        except Exception as error:  # any failure to load means the state is not complete
            logger.warning(f'{path}: cannot resume from it ({type(error).__name__}: {error}); trying an older one')
    return None, None


def load_resume_state(opt):
    """Resuming on CPU fails: ``RuntimeError: Found no NVIDIA driver`` (basicsr/train.py:85).

    BasicSR maps the saved state to ``torch.cuda.current_device()`` whatever ``num_gpu`` says.
    This is BasicSR's function with the state mapped to the model's device instead; with
    ``auto_resume`` it looks for states under the run's ``root_path`` (the user's directory) and
    takes the newest one that loads with its checkpoint, where BasicSR takes the highest number
    and crashes on a truncated or stray file.
    """
    from basicsr.utils import check_resume

    device = _resume_device(opt)
    resume_state_path = opt['path'].get('resume_state')
    resume_state = None
    if opt['auto_resume']:
        state_dir = os.path.join(opt.get('root_path', '.'), 'experiments', opt['name'], 'training_states')
        if os.path.isdir(state_dir):
            found, resume_state = _newest_complete_state(state_dir, device)
            if found:
                resume_state_path = opt['path']['resume_state'] = found
    if not resume_state_path:
        return None
    if resume_state is None:
        try:
            resume_state = torch.load(resume_state_path, map_location=device, weights_only=True)
        except Exception as error:  # missing, truncated or foreign: the user's path:resume_state
            raise CheckpointError(f'{resume_state_path}: cannot resume from it ({type(error).__name__}: {error})') \
                from error
    check_resume(opt, resume_state['iter'])
    return resume_state


def _init_dist_pytorch_cpu(backend, **kwargs):
    """``--launcher pytorch`` without a GPU: torchrun has set RANK, WORLD_SIZE and MASTER_*."""
    dist.init_process_group(backend='gloo', **kwargs)


def _init_dist_slurm_cpu(backend, port=None):
    """``--launcher slurm`` without a GPU: the variables BasicSR's slurm initialiser sets, then gloo."""
    import subprocess
    node_list = os.environ['SLURM_NODELIST']
    os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ['MASTER_PORT'] = str(port) if port is not None else os.environ.get('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    dist.init_process_group(backend='gloo')


def _gpu_or_cpu(gpu_init, cpu_init):
    """Distributed launch without a GPU fails with ``ZeroDivisionError`` (basicsr/utils/dist_util.py:24).

    BasicSR's initialisers compute ``rank % torch.cuda.device_count()`` and use NCCL, which needs
    CUDA. Without a GPU, the CPU initialiser (gloo backend) runs instead; with one, BasicSR's.
    """

    def init(backend='nccl', **kwargs):
        return (gpu_init if torch.cuda.is_available() else cpu_init)(backend, **kwargs)

    return init


def model_to_device(self, net):
    """DDP on CPU fails: ``device_ids=[torch.cuda.current_device()]`` (basicsr/models/base_model.py:98).

    A CPU module must be wrapped with no ``device_ids``; GPU runs keep BasicSR's method.
    """
    if self.opt['dist'] and self.device.type == 'cpu':
        return DistributedDataParallel(
            net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))
    return _original_model_to_device(self, net)


def _with_val_defaults(parse_options):
    """``basicsr test`` fails with ``KeyError: 'suffix'`` (basicsr/models/sr_model.py:177).

    ``SRModel`` reads ``val.suffix`` unconditionally in test mode; give it the value that means
    "no suffix" when the options file leaves it out.
    """

    def parse(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train=is_train)
        if opt.get('val') is not None:
            opt['val'].setdefault('suffix', None)
        return opt, args

    return parse


class _HeldStatistics:
    """A logger that holds back BasicSR's "Training statistics" record, whose epoch planning is
    wrong, and passes every other call through to ``logger``."""

    MARKER = 'Require iter number per epoch'

    def __init__(self, logger):
        self.logger, self.statistics = logger, None

    def info(self, message, *args, **kwargs):
        if self.MARKER in str(message):
            self.statistics = str(message)
        else:
            self.logger.info(message, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.logger, name)


def _with_full_batches(create_train_val_dataloader):
    """Training stops before ``total_iter``, or trains nothing and looks complete, when a train
    epoch has fewer batches than BasicSR counts (basicsr/train.py:45).

    The train loader drops the incomplete last batch (basicsr/data/__init__.py:72), but BasicSR
    counts the iterations per epoch rounding up, and plans its epochs from that count: 10 pairs at
    batch 4 are 2 iterations per epoch, not 3, so ``total_iter: 50`` ends after 36; fewer samples
    per process than one batch make every epoch empty, and the untrained network is saved and
    validated. Plan the epochs from the real count; stop, naming the data, when it is 0. BasicSR's
    statistics are logged with the real count in place of its own, so the log shows one count.
    """

    def create(opt, logger):
        held = _HeldStatistics(logger)
        train_loader, train_sampler, val_loaders, total_epochs, total_iters = create_train_val_dataloader(opt, held)
        if train_loader is not None:
            dataset_opt = opt['datasets']['train']
            if len(train_loader) == 0:
                root = dataset_opt.get('dataroot') or dataset_opt.get('dataroot_lq') or dataset_opt['name']
                raise DatasetError(
                    f"{root}: {len(train_loader.dataset)} training pairs x dataset_enlarge_ratio "
                    f"{dataset_opt.get('dataset_enlarge_ratio', 1)} over {opt['world_size']} process(es) give no "
                    f"full batch of batch_size_per_gpu {dataset_opt['batch_size_per_gpu']}, so no iteration would "
                    'run; lower batch_size_per_gpu or raise dataset_enlarge_ratio')
            total_epochs = math.ceil(total_iters / len(train_loader))
            planned = (f'Iterations per epoch (incomplete batches dropped): {len(train_loader)}; '
                       f'epochs: {total_epochs}; iters: {total_iters}.')
            held.statistics = re.sub(f'{held.MARKER}.*', planned, held.statistics, flags=re.S) \
                if held.statistics else planned
        if held.statistics:
            logger.info(held.statistics)
        return train_loader, train_sampler, val_loaders, total_epochs, total_iters

    return create


def _with_integer_quality(add_jpg_compression):
    """The JPEG degradation fails in ``cv2.imencode`` on OpenCV >= 4.12 (BasicSR #578).

    ``random_add_jpg_compression`` draws a float quality; OpenCV now requires an int.
    """

    def add(img, quality=90):
        return add_jpg_compression(img, int(round(float(quality))))

    add.__doc__ = add_jpg_compression.__doc__
    return add


def force_yml_value(text):
    """``--force_yml`` fails with SyntaxError, ValueError or NameError on a value such as ``[1, 2``
    (basicsr/utils/options.py:77): BasicSR reads list values with Python's ``eval``.

    Read the value as YAML instead, as the options file's own values are; ``none`` stays null, as
    in BasicSR. Raises ``ValueError`` naming the problem for text that is not YAML.
    """
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as error:  # '!!float abc' raises ValueError
        raise ValueError(f"not a YAML value ({' '.join(str(error).split())})") from error
    return None if isinstance(value, str) and value.lower() == 'none' else value


class CompatError(RuntimeError):
    """BasicSR's code is not the 1.4.2 code a fix here was written for."""


def expect_code(function, fragment, fix):
    """Fails loudly unless ``function``'s source still holds ``fragment``, the code that ``fix``
    cures: a BasicSR that changed it needs this module updated, not patched blindly."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError) as error:  # no source to compare: the fix cannot know what it patches
        raise CompatError(f'{function.__module__}.{function.__qualname__}: no source code to check the fix for {fix} '
                          f'against ({error}); install basicsr==1.4.2 from its source package') from error
    if fragment not in source:
        raise CompatError(f'{function.__module__}.{function.__qualname__} is not the BasicSR 1.4.2 code that '
                          f"mh2f_plugin's fix for {fix} expects (no {fragment!r} in it); install basicsr==1.4.2 "
                          'or update mh2f_plugin/compat.py')


def apply():
    """Installs every fix (idempotent); called by ``import mh2f_plugin``."""
    global _applied, _original_model_to_device
    if _applied:
        return
    install_functional_tensor_shim()

    import basicsr.data.degradations as degradations
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options
    from basicsr.models.base_model import BaseModel
    from basicsr.models.sr_model import SRModel
    from basicsr.utils import dist_util

    expect_code(basicsr.train.load_resume_state, 'torch.cuda.current_device()', 'resuming on CPU')
    expect_code(dist_util._init_dist_pytorch, 'torch.cuda.device_count()', 'the pytorch launcher on CPU')
    expect_code(dist_util._init_dist_slurm, 'torch.cuda.device_count()', 'the slurm launcher on CPU')
    expect_code(BaseModel.model_to_device, 'torch.cuda.current_device()', 'DDP on CPU')
    expect_code(SRModel.nondist_validation, "self.opt['val']['suffix']", 'val.suffix')
    expect_code(degradations.add_jpg_compression, 'cv2.imencode', 'the JPEG quality')
    expect_code(basicsr.utils.options._postprocess_yml_value, 'eval(value)', '--force_yml values')
    expect_code(basicsr.train.create_train_val_dataloader, 'num_iter_per_epoch = math.ceil(',
                'the epochs of a training set with an incomplete last batch')
    expect_code(basicsr.train.create_train_val_dataloader, _HeldStatistics.MARKER,
                "the epoch count in BasicSR's training statistics")

    basicsr.train.load_resume_state = load_resume_state
    dist_util._init_dist_pytorch = _gpu_or_cpu(dist_util._init_dist_pytorch, _init_dist_pytorch_cpu)
    dist_util._init_dist_slurm = _gpu_or_cpu(dist_util._init_dist_slurm, _init_dist_slurm_cpu)
    _original_model_to_device = BaseModel.model_to_device
    BaseModel.model_to_device = model_to_device
    parse = _with_val_defaults(basicsr.utils.options.parse_options)
    for module in (basicsr.utils.options, basicsr.train, basicsr.test):
        module.parse_options = parse
    degradations.add_jpg_compression = _with_integer_quality(degradations.add_jpg_compression)
    basicsr.utils.options._postprocess_yml_value = force_yml_value
    basicsr.train.create_train_val_dataloader = _with_full_batches(basicsr.train.create_train_val_dataloader)
    _applied = True
