"""What ``compare`` and the web page measure and draw: timed restoration, PSNR/SSIM on the Y
channel, NIQE for photos without ground truth, and the comparison figure with its zoomed crop."""
import contextlib
import cv2
import numpy as np
import statistics
import time
import torch
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img
from tqdm import tqdm

from mh2f_plugin.errors import OptionsError
from mh2f_plugin.models.derain_model import NIQE_BLOCK, fits_niqe
from mh2f_plugin.models.inference import restore
from mh2f_plugin.utils.figure import draw_comparison, rainiest_crop
from mh2f_plugin.utils.measure import PeakMemory

RAINY = 'rainy input'


def y_metrics(result, gt):
    """PSNR and SSIM on the Y channel, no border crop, of two uint8 BGR images."""
    return calculate_psnr(result, gt, 0, test_y_channel=True), calculate_ssim(result, gt, 0, test_y_channel=True)


def niqe(image, name):
    """NIQE of the uint8 BGR ``image`` (BasicSR's, Y channel; lower is better); ``OptionsError``
    naming the photo when it has fewer than the two 96x96 blocks NIQE needs (BasicSR gives NaN)."""
    height, width = image.shape[:2]
    if not fits_niqe(height, width):
        raise OptionsError(f'{name}: {width}x{height} pixels is too small for NIQE, which needs two '
                           f'{NIQE_BLOCK}x{NIQE_BLOCK} blocks; leave it out of the folder')
    return calculate_niqe(image, 0)


def mean_or_none(values):
    return statistics.fmean(values) if values else None


def evaluate(net,
             dataset,
             device,
             multiple,
             with_metrics,
             on_output=None,
             desc=None,
             autocast=None,
             memory_format=torch.contiguous_format,
             tile=None,
             tile_overlap=32):
    """Mean ms and peak MB per image, and mean PSNR/SSIM (Y, no crop) when ``with_metrics``;
    inputs are padded to ``multiple`` (restored in ``tile``-pixel tiles when given) and run under
    ``autocast`` in ``memory_format``;
    ``on_output(item, restored uint8 BGR)`` sees each result (metrics are float32 on the outputs).
    The first image is restored once untimed before it is timed, so that one-time set-up
    (kernel selection, allocator growth) is not charged to the time per image; the peak memory
    still counts that first pass."""
    times, peaks, psnrs, ssims = [], [], [], []
    for index, item in enumerate(tqdm(dataset, desc=desc, unit='image', disable=desc is None)):
        lq = item['lq'][None].to(device, memory_format=memory_format)
        with torch.no_grad(), autocast or contextlib.nullcontext(), PeakMemory(device) as peak:
            if index == 0:
                restore(net, lq, tile, tile_overlap=tile_overlap, multiple=multiple)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            out = restore(net, lq, tile, tile_overlap=tile_overlap, multiple=multiple)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1e3)
        peaks.append(peak.mb)
        result = tensor2img(out.float().cpu())
        if with_metrics:
            psnr, ssim = y_metrics(result, tensor2img(item['gt'][None]))
            psnrs.append(psnr)
            ssims.append(ssim)
        if on_output is not None:
            on_output(item, result)
    return statistics.fmean(times), max(peaks), mean_or_none(psnrs), mean_or_none(ssims)


def input_scores(dataset):
    """The rainy inputs' own mean scores: ``(PSNR, SSIM)`` against the ground truth (Y channel, no
    crop), or ``(NIQE, None)`` for photos without it (items without ``'gt'``)."""
    psnrs, ssims, niqes = [], [], []
    for item in dataset:
        rainy = tensor2img(item['lq'][None])
        if 'gt' in item:
            psnr, ssim = y_metrics(rainy, tensor2img(item['gt'][None]))
            psnrs.append(psnr)
            ssims.append(ssim)
        else:
            niqes.append(niqe(rainy, item['lq_path']))
    return (statistics.fmean(psnrs), statistics.fmean(ssims)) if psnrs else (statistics.fmean(niqes), None)


def draw_paired_figure(target, rainy, results, clean):
    """Writes the figure ``target`` (PNG): the rainy input, each ``(label, result)`` and the ground
    truth, titled with PSNR/SSIM (Y), zoomed where the rain is heaviest; all uint8 BGR."""
    panels = [(RAINY + ' %.2f/%.4f' % y_metrics(rainy, clean), rainy)]
    panels += [(f'{label} %.2f/%.4f' % y_metrics(result, clean), result) for label, result in results]
    panels.append(('ground truth', clean))
    draw_comparison(
        target, [(title, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)) for title, image in panels],
        rainiest_crop(rainy, clean),
        zoom_title='PSNR/SSIM (Y) above; zoom')


def draw_photo_figure(target, rainy, results, scores):
    """Writes the figure ``target`` (PNG) of a photo without ground truth: the rainy input and each
    ``(label, result)`` (uint8 BGR), titled with ``scores[label]`` (NIQE, or None where it has no
    score; ``RAINY`` for the input), zoomed where the methods changed the photo most (no clean
    image tells where the rain is)."""
    panels = [(RAINY, rainy)] + list(results)
    titles = [label if scores.get(label) is None else f'{label} {scores[label]:.3f}' for label, _ in panels]
    changed = np.mean([image.astype(np.float32) for _, image in panels[1:]], 0) if len(panels) > 1 else rainy
    draw_comparison(
        target, [(title, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)) for title, (_, image) in zip(titles, panels)],
        rainiest_crop(rainy, changed),
        zoom_title='NIQE above; zoom: most changed')
