"""Inference engines against PyTorch, per network family, on this CPU: the data behind ``engine: auto``.

    python benchmarks/bench_engines.py [--networks MH2FNet PReNet ...] [--size 481x321] [--rounds 5]

For each network at its published defaults (random weights, one image of ``--size``), the variants
below alternate in one process, ``--rounds`` times; the table gives medians in milliseconds and
the speed-up over PyTorch float32:

* PyTorch float32, in the memory format ``channels_last: auto`` picks; PyTorch under bf16
  autocast (where the CPU computes bf16 natively);
* ONNX Runtime in float32; OpenVINO in float32, and in bf16 where the CPU computes it.

Also the first call of each engine: from an empty engine cache (export and compilation) and from
a warm one (a new engine object over the files the first left: ONNX Runtime's session, OpenVINO's
compiled model from its own cache), and how far each output is from PyTorch float32, in 8-bit
levels. A second table gives each variant's throughput as a share of this CPU's matrix-multiply
peak in its dtype (float32, or bf16; 2 FLOPs per multiply-accumulate of the network's GMACs). The
engines' packages are the ``onnx`` and ``openvino`` extras.
"""
import argparse
import contextlib
import os
import statistics
import tempfile
import time
import torch
from bench_speed import device_name, matmul_peak_gflops

from mh2f_plugin.cli.flags import parse_size
from mh2f_plugin.models import engines
from mh2f_plugin.models.inference import pad_forward, size_multiple
from mh2f_plugin.models.numerics import cpu_bf16, resolve_channels_last
from mh2f_plugin.utils.measure import macs
from mh2f_plugin.weights.checkpoint import build_network  # BasicSR's, imported after mh2f_plugin's fixes

NETWORKS = ('MH2FNet', 'PReNet', 'PReNet_r', 'PRN', 'PRN_r', 'BRN', 'RESCAN', 'RCDNet', 'SIRR', 'DRDNet', 'MARDNet',
            'JORDERE', 'NLEDN', 'UMRL', 'VRGNet', 'Restormer', 'DRSformer', 'MPRNet', 'NeRDRain')


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def variants(name, image):
    """``({label: callable}, {label: first-call seconds})`` of one network."""
    torch.manual_seed(0)
    net = build_network({'type': name}).eval()
    multiple = size_multiple(net)
    layout = torch.channels_last if resolve_channels_last('auto', name, torch.device('cpu'))[0] else None
    on_torch = net.to(memory_format=layout) if layout else net
    torch_image = image.contiguous(memory_format=layout) if layout else image
    runs, first = {}, {}

    def torch_run(autocast):

        def run():
            with torch.no_grad(), autocast:
                return pad_forward(on_torch, torch_image, multiple).float().clamp(0, 1)

        return run

    runs['torch fp32'] = torch_run(contextlib.nullcontext())
    bf16 = cpu_bf16()[0]
    if bf16:
        runs['torch bf16'] = torch_run(torch.autocast('cpu', dtype=torch.bfloat16))
    engine_variants = [(engines.ONNXRUNTIME, 'f32'),
                       (engines.OPENVINO, 'f32')] + ([(engines.OPENVINO, 'bf16')] if bf16 else [])
    for engine, precision in engine_variants:
        label = f'{engine} {precision}'
        cold = engines.build_engine(engine, net, {'type': name}, precision)
        first[f'{label} cold'] = seconds(lambda: cold(image))
        warm = engines.build_engine(engine, net, {'type': name}, precision)
        first[f'{label} warm'] = seconds(lambda: warm(image))
        runs[label] = (lambda runner: lambda: runner(image))(warm)
    return runs, first


def measure(name, image, rounds):
    """``({label: median ms}, {label: first-call s}, {label: 8-bit levels from torch fp32})``."""
    runs, first = variants(name, image)
    reference = runs['torch fp32']()
    levels = {label: float(((run() - reference) * 255).abs().round().max()) for label, run in runs.items()}
    times = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            times[label].append(seconds(run) * 1e3)
    return {label: statistics.median(values) for label, values in times.items()}, first, levels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--networks', nargs='+', default=list(NETWORKS))
    parser.add_argument('--size', default='481x321', help='WxH of the image. Default: 481x321')
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    width, height = parse_size(args.size)
    image = torch.rand(1, 3, height, width)
    print(f'{device_name(torch.device("cpu"), torch.get_num_threads())}; {cpu_bf16()[1]}; {width}x{height}\n')
    peaks = {'fp32': matmul_peak_gflops(torch.device('cpu'))}
    if cpu_bf16()[0]:
        peaks['bf16'] = matmul_peak_gflops(torch.device('cpu'), torch.bfloat16)
    shares = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ['MH2F_ENGINE_CACHE'] = cache
        header = None
        for name in args.networks:
            ms, first, levels = measure(name, image, args.rounds)
            labels = list(ms)
            if header is None:
                header = ['network'] + [f'{label} ms (speed-up; levels)' for label in labels]
                header += [f'{label} first s' for label in first]
                print('| ' + ' | '.join(header) + ' |\n|' + ' --- |' * len(header))
            cells = [f'{ms[label]:.0f} ({ms["torch fp32"] / ms[label]:.2f}x; {levels[label]:.0f})' for label in labels]
            cells += [f'{value:.1f}' for value in first.values()]
            print(f'| {name} | ' + ' | '.join(cells) + ' |', flush=True)
            shares[name] = peak_shares(name, (height, width), ms, peaks)
    print_shares(shares, peaks)


def peak_shares(name, size, ms, peaks):
    """``{label: share of the matmul peak of the variant's dtype}`` of one network's medians."""
    torch.manual_seed(0)
    net = build_network({'type': name}).eval()
    with torch.no_grad():
        gflop = 2 * macs(net, (3, ) + size) / 1e9
    return {label: gflop / (value / 1e3) / peaks['bf16' if 'bf16' in label else 'fp32'] for label, value in ms.items()}


def print_shares(shares, peaks):
    print(f"\nmatmul peak: float32 {peaks['fp32']:.0f} GFLOP/s" +
          (f", bf16 {peaks['bf16']:.0f} GFLOP/s" if 'bf16' in peaks else '') + '\n')
    labels = list(next(iter(shares.values())))
    columns = ['network'] + [f'{label}: share of peak' for label in labels]
    print('| ' + ' | '.join(columns) + ' |\n|' + ' --- |' * len(columns))
    for name, share in shares.items():
        print(f'| {name} | ' + ' | '.join(f'{share[label]:.0%}' for label in labels) + ' |')


if __name__ == '__main__':
    main()
