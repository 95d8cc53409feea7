"""``DerainModel``: BasicSR's ``SRModel`` with what deraining needs on top.

* Test and validation take images of any size (``val.pad_multiple``, by default what the
  network needs: ``inference.size_multiple``), optionally in overlapping tiles (``val.tile``,
  ``val.tile_overlap``) and with the x8 self-ensemble (``val.self_ensemble``); always with the bare network, so a
  validation on rank 0 alone never waits on the other ranks.
* ``amp: auto | bf16 | fp16 | ~`` runs the network under autocast (fp16 with a gradient scaler)
  and ``channels_last: auto | true | false`` stores it channels-last; in test mode,
  ``winograd: auto | true | false`` computes its 3x3 convolutions with NNPACK's Winograd transform
  (float32 on the CPU), and ``engine: auto | torch | onnxruntime | openvino`` may run it in an
  inference engine instead (``mh2f_plugin.models.engines``; bf16 where ``amp`` resolves to it);
  all ``auto`` by default, resolved per device and network (``mh2f_plugin.models.numerics``) and
  logged. Losses and metrics are computed in float32.
* A loss that is NaN or infinite stops training with the iteration and the loss terms, before
  the optimizer step can spread it into the weights.
* Checkpoints and training states are written into a staging folder, checked (every file BasicSR
  meant to write is there and loads) and only then renamed into place, so a run killed while
  saving never leaves a half-written file that resuming would load, and a failed save (BasicSR
  retries, then ignores it) stops training with a ``CheckpointError``, the previous checkpoint
  staying the latest. Staging folders left by a killed run are removed when training starts.
* In test mode, every dataset's metrics go to ``results/<name>/metrics.csv``.
* ``path.pretrain_network_g`` takes the authors' own checkpoint files too, converted on the fly
  (``mh2f_plugin.weights``).
"""
import contextlib
import csv
import logging
import os
import shutil
import tempfile
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from collections import OrderedDict

from mh2f_plugin.errors import CheckpointError, DatasetError, InvalidOption, NonFiniteLossError
from mh2f_plugin.models import engines
from mh2f_plugin.models.inference import restore, size_multiple
from mh2f_plugin.models.numerics import (AMP_DTYPES, AUTO, bf16_channels_last_miscomputed, describe, resolve_amp,
                                         resolve_channels_last, resolve_engine, resolve_winograd)
from mh2f_plugin.models.winograd import use_winograd
from mh2f_plugin.weights.loader import load_weights_into

METRICS_FILE = 'metrics.csv'
SSIM_WINDOW = 11  # BasicSR's calculate_ssim: an 11x11 Gaussian window, valid positions only
NIQE_BLOCK = 96  # BasicSR's calculate_niqe: statistics over 96x96 blocks, at least two of them
STAGING_PREFIX = '.saving-'


class _Collect(logging.Handler):
    """Keeps the messages of warnings logged while it is attached (BasicSR's save errors)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def fits_niqe(height, width):
    """Whether BasicSR's NIQE can score an image of ``height x width``: it needs two 96x96 blocks
    (with fewer it gives NaN)."""
    return (height // NIQE_BLOCK) * (width // NIQE_BLOCK) >= 2


def _load_problem(path):
    """None when ``path`` loads as a checkpoint, else why it does not."""
    try:
        torch.load(path, map_location='cpu', weights_only=True)
        return None
    except Exception as error:  # any way a file can fail to load means it is not a complete checkpoint
        return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"


@MODEL_REGISTRY.register()
class DerainModel(SRModel):

    def __init__(self, opt):
        amp = opt.get('amp', AUTO)
        if amp not in tuple(AMP_DTYPES) + (AUTO, ):
            raise InvalidOption(f"amp must be one of auto, bf16, fp16 or ~ (off), got {amp!r}")
        device = torch.device('cuda' if opt['num_gpu'] != 0 else 'cpu')
        arch = (opt.get('network_g') or {}).get('type')
        amp, amp_reason = resolve_amp(amp, device, arch, inference=not opt.get('is_train'))
        self.amp_dtype = AMP_DTYPES[amp]
        self.engine = (engines.TORCH, None, 'training') if opt.get('is_train') else resolve_engine(
            opt.get('engine', AUTO), arch, device, amp)
        self.engine_runner = None
        winograd_choice = None if opt.get('is_train') or self.engine[0] != engines.TORCH else resolve_winograd(
            opt.get('winograd', AUTO), arch, device, amp)
        self.winograd = bool(winograd_choice and winograd_choice[0])
        self.channels_last, cl_reason = resolve_channels_last(
            opt.get('channels_last', AUTO), arch, device, winograd_on=self.winograd)
        get_root_logger().info(
            describe(amp, amp_reason, self.channels_last, cl_reason=cl_reason, winograd_choice=winograd_choice) +
            f'; engine {self.engine[0]}' + (f', {self.engine[1]}' if self.engine[1] else '') + f' ({self.engine[2]})')
        super().__init__(opt)
        if opt.get('is_train') and opt.get('rank', 0) == 0:
            remove_staging_folders(opt['path'])
        self.scaler = torch.amp.GradScaler('cuda', enabled=amp == 'fp16' and self.device.type == 'cuda')
        self.test_metrics = OrderedDict()

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's ``load_network`` for BasicSR checkpoints, official files and zoo names alike."""
        source = load_weights_into(self.get_bare_model(net), load_path, strict, param_key=param_key)
        get_root_logger().info(f'Loading {type(self.get_bare_model(net)).__name__} model from {load_path} ({source}).')

    def model_to_device(self, net):
        if self.channels_last and self.is_train and self.device.type == 'cpu' and self.amp_dtype == torch.bfloat16:
            self._refuse_miscomputed_layout(net)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.winograd:
            use_winograd(net)
        return super().model_to_device(net)

    def _refuse_miscomputed_layout(self, net):
        """Channels-last off (``auto``) or refused (``true``) where PyTorch would train ``net`` with
        wrong weight gradients: bfloat16 channels-last on the CPU, some dilated convolutions."""
        conv = bf16_channels_last_miscomputed(net)
        if conv is None:
            return
        problem = (f'{type(net).__name__}.{conv} is a dilated convolution whose weight gradient PyTorch computes '
                   'wrongly in bfloat16 channels-last on the CPU (NaN, Inf or a crash)')
        if self.opt.get('channels_last', AUTO) != AUTO:
            raise InvalidOption(f'channels_last: true with amp bf16 cannot train here: {problem}; '
                                'set channels_last: auto or false')
        self.channels_last = False
        get_root_logger().info(f'numerics: channels-last off for training: {problem}')

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def feed_data(self, data):
        super().feed_data(data)
        self.image_path = data.get('lq_path', [None])[0]
        if self.channels_last:
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)

    def compute_losses(self, output, gt):
        """The loss terms of ``SRModel`` (pixel, perceptual, style) as an ordered dict."""
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(output, gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, gt)
            if l_percep is not None:
                losses['l_percep'] = l_percep
            if l_style is not None:
                losses['l_style'] = l_style
        return losses

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.output = self.net_g(self.lq)
        losses = self.compute_losses(self.output.float(), self.gt)
        l_total = sum(losses.values())
        if not torch.isfinite(l_total):
            terms = ', '.join(f'{name} = {value.item():.4g}' for name, value in losses.items())
            raise NonFiniteLossError(f'iteration {current_iter}: the training loss is not finite ({terms}); '
                                     'lower the learning rate, turn off amp, or check the data')
        self.scaler.scale(l_total).backward()
        self.scaler.step(self.optimizer_g)
        self.scaler.update()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def check_metric_windows(self):
        """BasicSR's SSIM of an image smaller than its 11x11 window, and its NIQE of an image with
        fewer than two 96x96 blocks, are NaN, logged without a word: refused, naming the image."""
        height, width = self.lq.shape[-2:]
        for name, metric in ((self.opt.get('val') or {}).get('metrics') or {}).items():
            crop = metric.get('crop_border', 0)
            inner_h, inner_w = height - 2 * crop, width - 2 * crop
            if metric.get('type') == 'calculate_ssim' and min(inner_h, inner_w) < SSIM_WINDOW:
                need = f'the {SSIM_WINDOW}x{SSIM_WINDOW} window of'
            elif metric.get('type') == 'calculate_niqe' and not fits_niqe(inner_h, inner_w):
                need = f'two {NIQE_BLOCK}x{NIQE_BLOCK} blocks, what needs'
            else:
                continue
            raise DatasetError(f'{self.image_path}: {width}x{height} pixels, less crop_border {crop} at each side, '
                               f"is smaller than {need} the metric '{name}' ({metric['type']}); test on larger "
                               'images, or leave that metric out')

    def runner(self, net):
        """What runs ``net`` in test mode: itself, or the engine ``engine`` resolved to (built once)."""
        engine, precision, _ = self.engine
        if engine == engines.TORCH:
            return net
        if self.engine_runner is None:
            self.engine_runner = engines.build_engine(engine, net, self.opt['network_g'], precision)
        return self.engine_runner

    def test(self):
        self.check_metric_windows()
        val_opt = self.opt.get('val') or {}
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        multiple = val_opt.get('pad_multiple') or size_multiple(net)
        was_training = net.training
        net.eval()
        runner = self.runner(net)
        with torch.no_grad(), self.autocast() if runner is net else contextlib.nullcontext():
            output = restore(
                runner,
                self.lq,
                val_opt.get('tile'),
                tile_overlap=val_opt.get('tile_overlap', 32),
                multiple=multiple,
                ensemble=val_opt.get('self_ensemble', False))
        self.output = output.float()
        net.train(was_training)

    def save(self, epoch, current_iter):
        """``SRModel.save`` into staging folders beside the real ones, checked, then renamed into
        place (models first, so a state never points at a checkpoint that is not there)."""
        if self.opt.get('rank', 0) != 0:
            return super().save(epoch, current_iter)
        paths = self.opt['path']
        final = {key: paths[key] for key in ('models', 'training_states')}
        staging = {key: tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder) for key, folder in final.items()}
        errors = _Collect()
        logging.getLogger('basicsr').addHandler(errors)
        try:
            paths.update(staging)
            super().save(epoch, current_iter)
            self._check_saved(staging, final, current_iter, messages=errors.messages)
        except BaseException:
            for folder in staging.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            paths.update(final)
            logging.getLogger('basicsr').removeHandler(errors)
        for key in ('models', 'training_states'):
            for name in sorted(os.listdir(staging[key])):
                os.replace(os.path.join(staging[key], name), os.path.join(final[key], name))
            shutil.rmtree(staging[key])

    @staticmethod
    def _check_saved(staging, final, current_iter, messages):
        """``CheckpointError`` unless every file ``SRModel.save`` writes is in ``staging`` and loads."""
        expected = {
            'models': [f"net_g_{'latest' if current_iter == -1 else current_iter}.pth"],
            'training_states': [f'{current_iter}.state'] if current_iter != -1 else []
        }
        problems = {
            name: _load_problem(os.path.join(staging[key], name))
            for key, names in expected.items()
            for name in names
        }
        bad = [name for name, problem in problems.items() if problem]
        if bad:
            cause = messages[0] if messages else f'{bad[0]} does not load back: {problems[bad[0]]}'
            fix = 'free disk space' if 'space' in cause.lower() else 'fix that'
            raise CheckpointError(f"{final['models']}: could not save {', '.join(bad)} of iteration {current_iter} "
                                  f'({cause}); training stopped, the previous checkpoint is still the latest '
                                  f'({fix}, then resume with --auto_resume)')

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if not self.opt['is_train']:
            self.test_metrics[dataset_name] = dict(self.metric_results)
            write_metrics(os.path.join(self.opt['path']['results_root'], METRICS_FILE), self.test_metrics)


def write_metrics(path, metrics):
    """``{dataset: {metric: value}}`` as CSV, one row per dataset."""
    names = list(dict.fromkeys(name for values in metrics.values() for name in values))
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['dataset'] + names)
        for dataset, values in metrics.items():
            writer.writerow([dataset] + [f'{values[name]:.4f}' if name in values else '' for name in names])


def remove_staging_folders(paths):
    """Removes the staging folders a run killed while saving left in the models and states folders."""
    for key in ('models', 'training_states'):
        folder = paths.get(key)
        if folder and os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.startswith(STAGING_PREFIX):
                    shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
