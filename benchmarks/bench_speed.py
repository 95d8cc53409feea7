"""Network speed on this device: training step, full-image forward, loss share, peak memory.

Prints a Markdown table per network. Each measurement runs in a fresh process on the CPU
(``--timeout`` bounds it: a compilation that runs past it is reported, not waited for). Peak
memory is the growth from before the network is built to the end of the timed loop (weights,
optimizer state and activations; CPU: resident set, allocator caches included; CUDA: allocated
tensors), measured by ``mh2f_plugin.utils.measure.PeakMemory``. Achieved GFLOP/s count 2 FLOPs per
multiply-accumulate (MACs from ``mmengine.analysis``) and 3x the forward cost for a training step
(forward + backward); "% of peak" compares them with a 2048x2048 matrix multiply in float32
(TF32 off), or in bfloat16 for the bf16 variants, measured in the same process right after each
measurement (a shared machine's speed drifts within minutes; after, so that the memory peak is
the network's). A second table times the
network's convolutions alone (each in isolation, at its shape and dtype in the network, as often
as the network runs it): the % of peak the network would reach were nothing else run;
``--convolution-detail`` lists those convolutions one by one, each with its own % of peak. On CUDA,
``cudnn.benchmark`` is on, as BasicSR's trainer sets it, and cuDNN's default TF32 convolutions
are left as PyTorch sets them.

    python benchmarks/bench_speed.py                     # MH2F-Net, all variants, this CPU
    python benchmarks/bench_speed.py --variants channels_last bf16_channels_last --convolution-detail
    python benchmarks/bench_speed.py --networks MH2FNet PReNet RESCAN --device cuda \\
        --variants fp32 bf16_channels_last bf16_channels_last_compile --warmup 5 --repeats 20
"""
import argparse
import collections
import json
import multiprocessing
import platform
import queue
import time
import torch

from mh2f_plugin.utils.allocator import keep_freed_memory
from mh2f_plugin.utils.measure import PeakMemory, macs
from mh2f_plugin.weights.checkpoint import build_network  # BasicSR's, imported after mh2f_plugin's fixes

VARIANTS = ('fp32', 'channels_last', 'bf16', 'bf16_channels_last', 'compile', 'bf16_channels_last_compile')


def cpu_name():
    with open('/proc/cpuinfo', encoding='utf-8') as f:
        return next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')),
                    platform.processor())


def device_name(device, threads):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{cpu_name()}, {threads} threads'


def matmul_peak_gflops(device, dtype=torch.float32, size=2048, repeats=10, rounds=5):
    """Measured matrix-multiply throughput in ``dtype``, GFLOP/s: the best of ``rounds``."""
    a, b = torch.rand(size, size, device=device, dtype=dtype), torch.rand(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _first_call_ms(fn, device):
    """Milliseconds of one call of ``fn``: made first, it includes any compilation."""
    start = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


def _timed(fn, device, warmup, repeats):
    """Milliseconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats * 1e3


def default_network(name):
    """``name`` at its published defaults (random weights, seed 0)."""
    torch.manual_seed(0)
    return build_network({'type': name})


def build(name, variant, device, compile_mode):
    net = default_network(name).to(device)
    memory_format = torch.channels_last if 'channels_last' in variant else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    run = net
    if variant.endswith('compile'):
        torch._dynamo.reset()  # in-process measurements: compile for this input size only, not dynamic shapes
        run = torch.compile(net, mode=compile_mode)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.startswith('bf16'))
    return net, run, memory_format, autocast


def train_step_ms(args, name, variant, device):
    """``(first call ms, ms per call)`` of a training step: forward, loss, backward, Adam."""
    from mh2f_plugin.losses.ssim_loss import L1SSIMLoss
    net, run, memory_format, autocast = build(name, variant, device, args.compile_mode)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
    loss_fn = L1SSIMLoss()
    lq = torch.rand(args.batch, 3, args.crop, args.crop, device=device).to(memory_format=memory_format)
    gt = torch.rand(args.batch, 3, args.crop, args.crop, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(run(lq), gt)
        loss.backward()
        optimizer.step()

    return _first_call_ms(step, device), _timed(step, device, args.warmup, args.repeats)


def forward_ms(args, name, variant, device):
    """``(first call ms, ms per call)`` of a full-image forward pass without gradients."""
    net, run, memory_format, autocast = build(name, variant, device, args.compile_mode)
    net.eval()
    img = torch.rand(1, 3, args.height, args.width, device=device).to(memory_format=memory_format)

    def forward():
        with torch.no_grad(), autocast:
            run(img)

    return _first_call_ms(forward, device), _timed(forward, device, args.warmup, args.repeats)


def convolutions_ms(args, name, variant, device, phase):
    """What the network's ``nn.Conv2d`` layers take alone in one ``phase``: every distinct
    convolution (its configuration, input shape and dtype) timed in isolation, with the variant's
    numerics, and counted as often as the network runs it; ``train`` adds the backward pass.

    Returns ``{'ms': total, 'detail': [{'convolution', 'count', 'ms', 'gflops'}, ...]}``, the
    detail slowest first (``ms``: all its calls; ``gflops``: its own arithmetic rate, the input
    gradient counted only where the network needs it).
    """
    net, _, memory_format, autocast = build(name, variant, device, None)
    counts = collections.Counter()

    def record(conv, inputs, _):
        x = inputs[0]
        config = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups)
        counts[(*config, conv.bias is not None, tuple(x.shape), x.dtype, x.requires_grad)] += 1

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    shape = (args.batch, 3, args.crop, args.crop) if phase == 'train' else (1, 3, args.height, args.width)
    with torch.set_grad_enabled(phase == 'train'), autocast:
        net(torch.rand(shape, device=device).to(memory_format=memory_format))
    for hook in hooks:
        hook.remove()
    detail = []
    for (*config, bias, shape, dtype, needs_grad), count in counts.items():
        conv = torch.nn.Conv2d(*config, bias=bias).to(device, memory_format=memory_format)
        x = torch.rand(shape, device=device, dtype=dtype).to(memory_format=memory_format).requires_grad_(needs_grad)

        def run():
            with torch.set_grad_enabled(phase == 'train'), autocast:
                out = conv(x)
            if phase == 'train':
                out.backward(torch.ones_like(out))

        ms = _timed(run, device, args.warmup, args.repeats)
        with torch.no_grad(), autocast:
            forward_flops = 2 * conv.weight[0].numel() * conv(x).numel()
        passes = 1 if phase == 'forward' else 2 + needs_grad  # forward, weight gradient, input gradient
        in_ch, out_ch, (kh, kw), (stride, _), _, (dilation, _), groups = config
        label = (f'{in_ch}->{out_ch} {kh}x{kw}' + (f' stride {stride}' if stride > 1 else '') +
                 (f' dilation {dilation}' if dilation > 1 else '') + (f' groups {groups}' if groups > 1 else '') +
                 f" on {'x'.join(map(str, shape))} {str(dtype).replace('torch.', '')}")
        detail.append({
            'convolution': label,
            'count': count,
            'ms': count * ms,
            'gflops': passes * forward_flops / ms / 1e6
        })
    detail.sort(key=lambda row: -row['ms'])
    return {'ms': sum(row['ms'] for row in detail), 'detail': detail}


def loss_ms(device, batch, crop, repeats):
    from mh2f_plugin.losses.ssim_loss import L1SSIMLoss
    pred = torch.rand(batch, 3, crop, crop, device=device, requires_grad=True)
    gt = torch.rand(batch, 3, crop, crop, device=device)
    return _timed(lambda: L1SSIMLoss()(pred, gt).backward(), device, 3, repeats)


def _measure(args, task, results):
    keep_freed_memory()  # as the basicsr command does (MH2F_KEEP_FREED_MEMORY=0: glibc's default)
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    if task == 'peak':
        # a CPU without bf16 units runs a bf16 matmul so slowly that it is measured only when needed
        bf16 = any(variant.startswith('bf16') for variant in args.variants)
        result = {
            'fp32': matmul_peak_gflops(device),
            'bf16': matmul_peak_gflops(device, torch.bfloat16) if bf16 else None
        }
    elif task == 'loss':
        result = {'loss_ms': loss_ms(device, args.batch, args.crop, args.repeats * 4)}
    elif task[0] == 'macs':
        net = default_network(task[1])
        result = {
            'train_flops': 3 * 2 * macs(net, (3, args.crop, args.crop)) * args.batch,
            'forward_flops': 2 * macs(net, (3, args.height, args.width))
        }
    elif task[0] == 'convolutions':
        _, name, variant, phase = task
        result = convolutions_ms(args, name, variant, device, phase)
        result['peak_gflops'] = matmul_peak_gflops(device, _dtype(variant))
    else:
        name, variant, phase = task
        with PeakMemory(device) as peak:
            first_ms, ms = (train_step_ms if phase == 'train' else forward_ms)(args, name, variant, device)
        result = {
            'ms': ms,
            'first_call_ms': first_ms,
            'peak_mb': peak.mb,
            'peak_gflops': matmul_peak_gflops(device, _dtype(variant))
        }
    results.put(result)


def _dtype(variant):
    return torch.bfloat16 if variant.startswith('bf16') else torch.float32


def measure(args, task, timeout=None):
    """Runs one measurement; its result dictionary, ``{'error': ...}`` if its process died, or
    None after ``timeout`` seconds.

    On the CPU (or with a ``timeout``) in a fresh process, so that resident-set peaks do not
    carry over; on CUDA without a ``timeout`` in this process (peaks are of allocated tensors,
    reset per measurement), which saves a CUDA start per measurement.
    """
    if args.device.startswith('cuda') and timeout is None:
        results = queue.SimpleQueue()
        _measure(args, task, results)
        return results.get()
    context = multiprocessing.get_context('spawn')
    results = context.Queue()
    process = context.Process(target=_measure, args=(args, task, results))
    process.start()
    deadline = time.monotonic() + (timeout if timeout is not None else float('inf'))
    try:
        while time.monotonic() < deadline:
            try:
                return results.get(timeout=min(1, max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                if process.exitcode is not None and results.empty():
                    code = process.exitcode
                    return {'error': f'killed by signal {-code}' if code < 0 else f'exit status {code}'}
        return None
    finally:
        process.kill()
        process.join()


def _cells(result, flops):
    """Table cells ``ms | GFLOP/s | % of peak | peak MB`` of one measurement (``{}``: not asked for);
    the % cell names the peak it is a share of, in GFLOP/s."""
    if result is None:
        return 'timeout | | |'
    if not result:
        return '- | | |'
    if 'error' in result:
        return f"{result['error']} | | |"
    result['gflops'] = flops / result['ms'] / 1e6
    peak = result['peak_gflops']
    return f"{result['ms']:.1f} | {result['gflops']:.1f} | {100 * result['gflops'] / peak:.1f}% of {peak:.0f} | " \
        f"{result['peak_mb']:.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--networks', nargs='+', default=['MH2FNet'])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--phases', nargs='+', default=['train', 'forward'], choices=['train', 'forward'])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--crop', type=int, default=64)
    parser.add_argument('--height', type=int, default=321)
    parser.add_argument('--width', type=int, default=481)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--compile-mode', default='default', help="torch.compile's mode for the compile variants")
    parser.add_argument('--timeout', type=float, help='seconds one measurement (compilation included) may take')
    parser.add_argument('--json', help='also write the results to this file (after every row)')
    parser.add_argument(
        '--convolution-detail',
        action='store_true',
        help='also print every distinct convolution timed alone: its share and %% of peak')
    args = parser.parse_args()

    peaks = measure(args, 'peak')
    loss = measure(args, 'loss')['loss_ms']
    name = device_name(torch.device(args.device), args.threads)
    bf16 = f", bf16 {peaks['bf16']:.1f} GFLOP/s" if peaks['bf16'] else ''
    print(f"Device: {name}; matmul peak (2048x2048, best of 5) at the start: fp32 {peaks['fp32']:.1f} GFLOP/s"
          f'{bf16} (each row: of the peak measured right after it)')
    print(f'L1SSIMLoss forward+backward, batch {args.batch} x 3x{args.crop}x{args.crop}: {loss:.2f} ms')
    results = {'device': name, 'torch': torch.__version__, 'peak_gflops': peaks, 'loss_ms': loss, 'networks': {}}
    for network in args.networks:
        flops = measure(args, ('macs', network))
        print(f'\n{network}: {flops["forward_flops"] / 2e9:.2f} GMACs per {args.width}x{args.height} image\n')
        print(f'| variant | train step ms (batch {args.batch}, {args.crop}x{args.crop}) | GFLOP/s | % of peak | '
              f'peak MB | forward ms ({args.width}x{args.height}) | GFLOP/s | % of peak | peak MB | loss share |')
        print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
        rows = results['networks'][network] = {}
        for variant in args.variants:
            train, forward = (
                measure(args, (network, variant, phase), args.timeout) if phase in args.phases else {}
                for phase in ('train', 'forward'))
            share = f"{100 * loss / train['ms']:.1f}%" if train and 'ms' in train else ''
            print(
                f'| {variant} | {_cells(train, flops["train_flops"])} | {_cells(forward, flops["forward_flops"])} | '
                f'{share} |',
                flush=True)
            rows[variant] = {'train': train, 'forward': forward}
            _save(args.json, results)
        _print_compilation(rows)
        _convolutions_alone(args, network, rows, flops)
        _save(args.json, results)


def _save(path, results):
    if path:
        with open(path, 'w') as f:
            json.dump(results, f, indent=2)


def _print_compilation(rows):
    """What the first call of each compiled variant took (inductor's on-disk cache of an earlier
    run of the same graph shortens it)."""
    for variant, row in rows.items():
        firsts = [
            f"{phase} {row[phase]['first_call_ms'] / 1e3:.1f} s" for phase in ('train', 'forward')
            if variant.endswith('compile') and (row[phase] or {}).get('first_call_ms')
        ]
        if firsts:
            print(f"{variant}: first call (compilation included): {', '.join(firsts)}")


def _convolutions_alone(args, network, rows, flops):
    """The table of what the network's convolutions take alone, the bound on each phase's speed."""
    print(f'\n{network}, its convolutions alone (each timed in isolation, as often as the network runs it): '
          'their time, their share of the measured time, and the % of peak were nothing else run\n')
    print('| variant | train: convolutions ms | share | % of peak | forward: convolutions ms | share | % of peak |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for variant, row in rows.items():
        if variant.endswith('compile'):
            continue
        cells = []
        for phase in ('train', 'forward'):
            if not (row[phase] or {}).get('ms'):
                cells.append(' | | ')
                continue
            result = measure(args, ('convolutions', network, variant, phase))
            if 'error' in result:
                cells.append(f"{result['error']} | | ")
                continue
            ms = row[phase]['convolutions_ms'] = result['ms']
            row[phase]['convolutions'] = result['detail']
            row[phase]['convolutions_peak_gflops'] = result['peak_gflops']
            cells.append(f"{ms:.1f} | {100 * ms / row[phase]['ms']:.0f}% | "
                         f"{100 * flops[f'{phase}_flops'] / ms / 1e6 / result['peak_gflops']:.0f}%")
        print(f'| {variant} | {" | ".join(cells)} |', flush=True)
    if args.convolution_detail:
        for variant, row in rows.items():
            for phase in ('train', 'forward'):
                if (row[phase] or {}).get('convolutions'):
                    _print_convolutions(network, variant, phase, row[phase]['convolutions'],
                                        row[phase]['convolutions_peak_gflops'])


def _print_convolutions(network, variant, phase, detail, peak):
    """One row per distinct convolution of ``convolutions_ms``: where the bound comes from."""
    total = sum(row['ms'] for row in detail)
    print(f'\n{network}, {variant}, {phase}: each convolution alone, slowest first\n')
    print('| convolution (input shape, dtype) | calls | ms | share | GFLOP/s | % of peak |')
    print('| --- | --- | --- | --- | --- | --- |')
    for row in detail:
        print(f"| {row['convolution']} | {row['count']} | {row['ms']:.1f} | {100 * row['ms'] / total:.1f}% | "
              f"{row['gflops']:.1f} | {100 * row['gflops'] / peak:.0f}% |")


if __name__ == '__main__':
    main()
