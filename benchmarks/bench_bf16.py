"""What bf16 inference costs in quality: PSNR against float32, per zoo network, with its authors' weights.

    python benchmarks/bench_bf16.py --data datasets/Rain100H prenet6-rain100h prn6-rain100h ...

For each zoo name (``basicsr zoo get`` fetches the file; ``--zoo-dir`` as everywhere), every pair of
``--data`` (any ``PairedDerainDataset`` layout) is restored in float32 (PyTorch), under PyTorch's bf16
autocast, and in OpenVINO's bf16 (the ``openvino`` extra). Prints each one's mean PSNR on the Y
channel (BasicSR's ``calculate_psnr``), the change from float32 in dB, and the largest 8-bit
difference from float32: the data behind ``BF16_INFERENCE_LOSS`` and the bf16 half of
``ENGINE_FASTER`` (``mh2f_plugin/models/numerics.py``).
"""
import mh2f_plugin  # noqa: F401  # isort: skip  (BasicSR fixes, before basicsr imports torchvision)
import argparse
import numpy as np
import torch
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img

from mh2f_plugin.data.paired_derain_dataset import PairedDerainDataset
from mh2f_plugin.models import engines
from mh2f_plugin.models.inference import restore, size_multiple
from mh2f_plugin.utils.markdown import markdown_table
from mh2f_plugin.weights.loader import load_network

VARIANTS = ('float32', 'PyTorch bf16', 'OpenVINO bf16')


def outputs(net, runner, lq, multiple):
    """``{variant: uint8 BGR image}`` of one rainy image."""
    with torch.no_grad():
        results = {'float32': restore(net, lq, multiple=multiple)}
        with torch.autocast('cpu', dtype=torch.bfloat16):
            results['PyTorch bf16'] = restore(net, lq, multiple=multiple).float()
        results['OpenVINO bf16'] = restore(runner, lq, multiple=multiple)
    return {variant: tensor2img(out.clamp(0, 1)) for variant, out in results.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='+', help='zoo names')
    parser.add_argument('--data', required=True, help='paired test data')
    parser.add_argument('--zoo-dir')
    args = parser.parse_args()
    dataset = PairedDerainDataset({
        'name': 'bf16',
        'dataroot': args.data,
        'layout': 'auto',
        'io_backend': {
            'type': 'disk'
        },
        'phase': 'val'
    })
    rows = []
    for name in args.names:
        net, network_opt = load_network(f'zoo:{name}', zoo_folder=args.zoo_dir)
        net.eval()
        runner = engines.build_engine(engines.OPENVINO, net, network_opt, 'bf16')
        scores, levels = {variant: [] for variant in VARIANTS}, {variant: 0 for variant in VARIANTS}
        for item in dataset:
            images = outputs(net, runner, item['lq'][None], size_multiple(net))
            clean = tensor2img(item['gt'][None])
            for variant, image in images.items():
                scores[variant].append(calculate_psnr(image, clean, 0, test_y_channel=True))
                difference = np.abs(image.astype(np.int64) - images['float32'].astype(np.int64)).max()
                levels[variant] = max(levels[variant], int(difference))
        base = np.mean(scores['float32'])
        rows.append([name, f'{base:.3f}'] +
                    [f'{np.mean(scores[variant]) - base:+.3f}; {levels[variant]}' for variant in VARIANTS[1:]])
        print(f'{name} done', flush=True)
    print(markdown_table(('weights', 'float32 PSNR', 'PyTorch bf16 (dB; levels)', 'OpenVINO bf16 (dB; levels)'), rows))


if __name__ == '__main__':
    main()
