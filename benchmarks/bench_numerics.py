"""Is channels-last faster, per network family, on this device? The data behind ``channels_last: auto``.

    python benchmarks/bench_numerics.py [--device cuda] [--networks MH2FNet PReNet ...]
    python benchmarks/bench_numerics.py --winograd [--networks ...]

For each registered network at its published defaults: the time of a forward pass on a 256x256
image and of a training step (L1 loss, backward, Adam) on a batch of 4 64x64 crops, in float32
and under the autocast ``amp: auto`` picks here, each with the default (contiguous) and the
channels-last memory format, measured alternately in one process. Prints the channels-last
speed-up (contiguous time / channels-last time) of each, or ``refused`` for a training step
that training refuses (``bf16_channels_last_miscomputed``); ``mh2f_plugin.models.numerics``
records which families are faster channels-last.

With ``--winograd``, instead: the float32 forward on the CPU with oneDNN's direct convolutions
(contiguous and channels-last) and with NNPACK's Winograd 3x3 convolutions (``use_winograd``,
contiguous) on a 481x321 image, in turn, and the Winograd speed-up over the faster direct layout:
the data behind
``winograd: auto`` (``WINOGRAD_FASTER``).
"""
import argparse
import contextlib
import statistics
import time
import torch
from bench_baselines import NETWORKS
from bench_speed import device_name, synchronize

from mh2f_plugin.models.numerics import AMP_DTYPES, bf16_channels_last_miscomputed, resolve_amp
from mh2f_plugin.models.winograd import use_winograd
from mh2f_plugin.weights.checkpoint import build_network  # BasicSR's, imported after mh2f_plugin's fixes


def best_ms(fn, device, repeats):
    """The best of ``repeats`` timed calls, after one untimed call, in milliseconds."""
    fn()
    best = float('inf')
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def timings(name, device, dtype, repeats):
    """``{(task, layout): ms}`` for one network."""
    torch.manual_seed(0)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    results = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        net = build_network({'type': name}).to(device, memory_format=layout)
        image = torch.rand(1, 3, 256, 256, device=device).contiguous(memory_format=layout)
        crops = torch.rand(4, 3, 64, 64, device=device).contiguous(memory_format=layout)
        optimizer = torch.optim.Adam(net.parameters(), 1e-4)

        def forward():
            with torch.no_grad(), autocast:
                net.eval()(image)

        def step():
            net.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                out = net(crops)
            (out.float() - crops).abs().mean().backward()
            optimizer.step()

        key = 'channels_last' if layout is torch.channels_last else 'contiguous'
        results['forward', key] = best_ms(forward, device, repeats)
        # training refuses bf16 channels-last on the CPU where PyTorch miscomputes it (or crashes)
        refused = (
            device.type == 'cpu' and dtype == torch.bfloat16 and layout is torch.channels_last
            and bf16_channels_last_miscomputed(net) is not None)
        results['step', key] = None if refused else best_ms(step, device, repeats)
    return results


def seconds(net, x):
    start = time.perf_counter()
    net(x)
    return time.perf_counter() - start


def winograd_timings(name, repeats):
    """``(contiguous ms, channels-last ms, Winograd ms, speed-up)`` of a float32 481x321 forward on
    the CPU: three copies of the network timed in turn, ``repeats`` rounds; medians, and the median
    of each round's ratio of the faster direct layout to Winograd."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 321, 481)
    variants = []
    for layout, winograd in ((torch.contiguous_format, False), (torch.channels_last, False), (torch.contiguous_format,
                                                                                              True)):
        net = build_network({'type': name}).eval().to(memory_format=layout)
        if winograd:
            use_winograd(net)
        variants.append((net, image.contiguous(memory_format=layout)))
    rounds = []
    with torch.inference_mode():
        for net, x in variants:
            net(x)
        for _ in range(repeats):
            rounds.append([seconds(net, x) * 1e3 for net, x in variants])
    medians = [statistics.median(times) for times in zip(*rounds)]
    return medians + [statistics.median(min(c, cl) / w for c, cl, w in rounds)]


def print_winograd_table(networks, repeats):
    print(f"{device_name(torch.device('cpu'), torch.get_num_threads())}, "
          f'{torch.backends.cpu.get_cpu_capability()}; float32 forward, 481x321, medians of {repeats} rounds\n')
    print('| network | direct, contiguous ms | direct, channels-last ms | Winograd ms | Winograd speed-up |')
    print('| --- |' + ' --- |' * 4)
    for network in networks:
        contiguous, channels_last, winograd, speed_up = winograd_timings(network, repeats)
        print(f'| {network} | {contiguous:.0f} | {channels_last:.0f} | {winograd:.0f} | {speed_up:.2f}x |', flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--networks', nargs='+', default=list(NETWORKS))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--winograd', action='store_true', help="time NNPACK's Winograd convolutions instead")
    args = parser.parse_args()
    if args.winograd:
        print_winograd_table(args.networks, args.repeats)
        return
    device = torch.device(args.device)
    amp, reason = resolve_amp('auto', device)
    name = device_name(device, torch.get_num_threads())
    print(f'{name}; amp auto = {amp or "float32"} ({reason})\n')
    print('| network | forward fp32 ms | channels-last speed-up | step fp32 ms | speed-up | '
          f'forward {amp} ms | speed-up | step {amp} ms | speed-up |')
    print('| --- |' + ' --- |' * 8)
    for network in args.networks:
        cells = []
        for dtype in (None, AMP_DTYPES[amp]):
            if amp is None and dtype is None and cells:
                break
            result = timings(network, device, dtype, args.repeats)
            for task in ('forward', 'step'):
                channels_last = result[task, 'channels_last']
                cells += [
                    f"{result[task, 'contiguous']:.0f}",
                    f"{result[task, 'contiguous'] / channels_last:.2f}x" if channels_last else 'refused'
                ]
        print(f'| {network} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
    main()
