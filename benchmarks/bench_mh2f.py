"""MH2F-Net speed on this machine: training step, full-image forward, loss share, peak memory.

Prints a Markdown table. Each measurement runs in a fresh process; its peak memory is the growth
from before the network is built to the end of the timed loop (weights, optimizer state and
activations; CPU: resident set, allocator caches included; CUDA: allocated tensors), measured by
``mh2f_plugin.cli.measure.PeakMemory``. Achieved GFLOP/s count 2 FLOPs per multiply-accumulate
(MACs from ``mmengine.analysis``) and 3x the forward cost for a training step (forward +
backward); "% of peak" compares them with a 2048x2048 matrix multiply measured in the same run,
in float32, or in bfloat16 for the bf16 variants.

    python benchmarks/bench_mh2f.py                      # all variants, CPU
    python benchmarks/bench_mh2f.py --variants fp32 channels_last --device cuda
"""
import argparse
import json
import multiprocessing
import time
import torch

from mh2f_plugin.cli.measure import PeakMemory, macs

VARIANTS = ('fp32', 'channels_last', 'bf16', 'bf16_channels_last', 'compile')


def matmul_peak_gflops(device, dtype=torch.float32, size=2048, repeats=10, rounds=5):
    """Measured matrix-multiply throughput in ``dtype``, GFLOP/s: the best of ``rounds``."""
    a, b = torch.rand(size, size, device=device, dtype=dtype), torch.rand(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _timed(fn, device, warmup, repeats):
    """Milliseconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats * 1e3


def default_network():
    import mh2f_plugin  # noqa: F401
    from mh2f_plugin.archs.mh2f_arch import MH2FNet
    torch.manual_seed(0)
    return MH2FNet()


def build(variant, device):
    net = default_network().to(device)
    memory_format = torch.channels_last if variant.endswith('channels_last') else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    run = torch.compile(net) if variant == 'compile' else net
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.startswith('bf16'))
    return net, run, memory_format, autocast


def train_step_ms(variant, device, batch, crop, warmup, repeats):
    from mh2f_plugin.losses.ssim_loss import L1SSIMLoss
    net, run, memory_format, autocast = build(variant, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    loss_fn = L1SSIMLoss()
    lq = torch.rand(batch, 3, crop, crop, device=device).to(memory_format=memory_format)
    gt = torch.rand(batch, 3, crop, crop, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(run(lq), gt)
        loss.backward()
        optimizer.step()

    return _timed(step, device, warmup, repeats)


def forward_ms(variant, device, height, width, warmup, repeats):
    net, run, memory_format, autocast = build(variant, device)
    net.eval()
    img = torch.rand(1, 3, height, width, device=device).to(memory_format=memory_format)

    def forward():
        with torch.no_grad(), autocast:
            run(img)

    return _timed(forward, device, warmup, repeats)


def loss_ms(device, batch, crop, repeats):
    from mh2f_plugin.losses.ssim_loss import L1SSIMLoss
    pred = torch.rand(batch, 3, crop, crop, device=device, requires_grad=True)
    gt = torch.rand(batch, 3, crop, crop, device=device)
    return _timed(lambda: L1SSIMLoss()(pred, gt).backward(), device, 3, repeats)


def _measure(args, task, queue):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if task == 'peak':
        result = {'fp32': matmul_peak_gflops(device), 'bf16': matmul_peak_gflops(device, torch.bfloat16)}
    elif task == 'macs':
        net = default_network()
        result = {
            'train_flops': 3 * 2 * macs(net, (3, args.crop, args.crop)) * args.batch,
            'forward_flops': 2 * macs(net, (3, args.height, args.width))
        }
    elif task == 'loss':
        result = {'loss_ms': loss_ms(device, args.batch, args.crop, args.repeats * 4)}
    else:
        variant, phase = task
        with PeakMemory(device) as peak:
            if phase == 'train':
                ms = train_step_ms(variant, device, args.batch, args.crop, args.warmup, args.repeats)
            else:
                ms = forward_ms(variant, device, args.height, args.width, args.warmup, args.repeats)
        result = {'ms': ms, 'peak_mb': peak.mb}
    queue.put(result)


def measure(args, task):
    """Runs one measurement in a fresh process; returns its result dictionary."""
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_measure, args=(args, task, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--crop', type=int, default=64)
    parser.add_argument('--height', type=int, default=321)
    parser.add_argument('--width', type=int, default=481)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args()

    peaks = measure(args, 'peak')
    loss = measure(args, 'loss')['loss_ms']
    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else f'CPU, {args.threads} threads'
    print(f"Device: {device_name}; matmul peak (2048x2048, best of 5): fp32 {peaks['fp32']:.1f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.1f} GFLOP/s")
    print(f'L1SSIMLoss forward+backward, batch {args.batch} x 3x{args.crop}x{args.crop}: {loss:.2f} ms\n')
    print(f'| variant | train step ms (batch {args.batch}, {args.crop}x{args.crop}) | GFLOP/s | % of peak | '
          f'peak MB | forward ms ({args.width}x{args.height}) | GFLOP/s | % of peak | peak MB | loss share |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    results = {'device': device_name, 'peak_gflops': peaks, 'loss_ms': loss, 'variants': {}}
    flops = measure(args, 'macs')
    for variant in args.variants:
        train = measure(args, (variant, 'train'))
        forward = measure(args, (variant, 'forward'))
        train['gflops'] = flops['train_flops'] / train['ms'] / 1e6
        forward['gflops'] = flops['forward_flops'] / forward['ms'] / 1e6
        peak = peaks['bf16' if variant.startswith('bf16') else 'fp32']
        results['variants'][variant] = {'train': train, 'forward': forward}
        print(
            f"| {variant} | {train['ms']:.0f} | {train['gflops']:.1f} | {100 * train['gflops'] / peak:.0f}% | "
            f"{train['peak_mb']:.0f} | {forward['ms']:.0f} | {forward['gflops']:.1f} | "
            f"{100 * forward['gflops'] / peak:.0f}% | {forward['peak_mb']:.0f} | {100 * loss / train['ms']:.1f}% |",
            flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
