"""The cost of NIQE (BasicSR's ``calculate_niqe``) per megapixel, against deraining the same photo.

    python benchmarks/bench_niqe.py [--size 1024x768] [--repeats 3]

Deraining is MH2F-Net's forward (default width and N = 8) with the numerics ``auto`` picks on
this device, as ``basicsr derain`` runs it. The ratio says whether scoring a result costs more
than making it; both are timed in this process, on the same photograph (scikit-image's
astronaut, resized).
"""
import argparse
import cv2
import time
import torch
from bench_speed import device_name
from skimage import data as skdata

import mh2f_plugin  # noqa: F401  (BasicSR fixes first)
from mh2f_plugin.archs.mh2f_arch import MH2FNet
from mh2f_plugin.models.numerics import AMP_DTYPES, AUTO, resolve_amp, resolve_channels_last
from mh2f_plugin.utils.allocator import keep_freed_memory


def best_seconds(function, repeats):
    """The fastest of ``repeats`` calls of ``function``, after one untimed call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', default='1024x768', help='WxH of the photo. Default: 1024x768')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    from basicsr.metrics import calculate_niqe  # after mh2f_plugin's fixes, which import basicsr needs
    keep_freed_memory()
    width, height = (int(v) for v in args.size.split('x'))
    bgr = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_AREA)
    megapixels = width * height / 1e6
    device = torch.device('cpu')
    amp, _ = resolve_amp(AUTO, device)
    channels_last, _ = resolve_channels_last(AUTO, 'MH2FNet', device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = MH2FNet().eval().to(memory_format=layout)
    x = torch.from_numpy(bgr[:, :, ::-1].transpose(2, 0, 1).copy()).float().div(255)[None].to(memory_format=layout)

    def derain():
        with torch.no_grad(), torch.autocast('cpu', dtype=AMP_DTYPES[amp], enabled=amp is not None):
            net(x)

    niqe = best_seconds(lambda: calculate_niqe(bgr, 0), args.repeats) / megapixels
    forward = best_seconds(derain, args.repeats) / megapixels
    print(f'{device_name(device, torch.get_num_threads())}; {args.size} ({megapixels:.2f} MP); MH2F-Net in '
          f"{amp or 'float32'}{' channels-last' if channels_last else ''}\n")
    print('| measurement | s / MP |\n| --- | --- |')
    print(f'| NIQE (calculate_niqe, Y channel) | {niqe:.2f} |')
    print(f'| MH2F-Net forward | {forward:.2f} |')
    print(f'| NIQE / forward | {niqe / forward:.2f}x |')


if __name__ == '__main__':
    main()
