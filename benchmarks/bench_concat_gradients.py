"""MH2F-Net's training step with its concatenations handing back dense gradients
(``ConcatWithDenseGradients``) against plain ``torch.cat``, in float32 and in bf16 autocast.

``concat_channels`` uses the former only in bf16 channels-last training on the CPU: this is the
measurement behind that choice. Both run in one process on one network, step by step in
alternation (the order swapped every pair), so that the drift of a shared machine's speed falls
on both alike. Channels-last, batch 16 of 64x64 crops, ``L1SSIMLoss`` and Adam, as
``bench_speed.py`` times it. Prints the median step of each and the quartiles of the per-pair
ratio ``torch.cat / dense gradients`` (above 1: dense gradients faster).

    python benchmarks/bench_concat_gradients.py --dtypes fp32 bf16 --pairs 20
    python benchmarks/bench_concat_gradients.py --num-feat 16 --num-blocks 4 --batch 8 --crop 48  # the demo's
"""
import argparse
import statistics
import time
import torch
from bench_speed import device_name

import mh2f_plugin.archs.mh2f_arch as mh2f_arch
from mh2f_plugin.archs.arch_util import ConcatWithDenseGradients
from mh2f_plugin.cli.allocator import keep_freed_memory
from mh2f_plugin.losses.ssim_loss import L1SSIMLoss

CONCATENATIONS = {
    'torch.cat': lambda features: torch.cat(features, 1),
    'dense gradients': lambda features: ConcatWithDenseGradients.apply(*features)
}


def compare(dtype, pairs, batch, crop, network_options):
    """``{name: [ms per step, ...]}`` for each of ``CONCATENATIONS``, ``pairs`` steps each
    (``dtype``: ``'fp32'``, or ``'bf16'`` autocast), of ``MH2FNet(**network_options)``."""
    torch.manual_seed(0)
    net = mh2f_arch.MH2FNet(**network_options).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = L1SSIMLoss()
    lq = torch.rand(batch, 3, crop, crop).to(memory_format=torch.channels_last)
    gt = torch.rand(batch, 3, crop, crop)

    def step_ms(name):
        mh2f_arch.concat_channels = CONCATENATIONS[name]
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == 'bf16'):
            loss = loss_fn(net(lq), gt)
        loss.backward()
        optimizer.step()
        return (time.perf_counter() - start) * 1e3

    original = mh2f_arch.concat_channels
    try:
        for name in list(CONCATENATIONS) * 2:  # warm-up
            step_ms(name)
        times = {name: [] for name in CONCATENATIONS}
        for pair in range(pairs):
            for name in (list(CONCATENATIONS) if pair % 2 == 0 else list(CONCATENATIONS)[::-1]):
                times[name].append(step_ms(name))
        return times
    finally:
        mh2f_arch.concat_channels = original


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--pairs', type=int, default=20)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--crop', type=int, default=64)
    parser.add_argument('--num-feat', type=int, default=32)
    parser.add_argument('--num-blocks', type=int, default=8)
    args = parser.parse_args()
    keep_freed_memory()
    print(f'Device: {device_name(torch.device("cpu"), torch.get_num_threads())}; MH2FNet(num_feat={args.num_feat}, '
          f'num_blocks={args.num_blocks}), batch {args.batch} of {args.crop}x{args.crop}\n')
    print('| numerics | torch.cat ms | dense gradients ms | ratio: median (quartiles) |')
    print('| --- | --- | --- | --- |')
    for dtype in args.dtypes:
        times = compare(dtype, args.pairs, args.batch, args.crop, {
            'num_feat': args.num_feat,
            'num_blocks': args.num_blocks
        })
        ratios = [a / b for a, b in zip(times['torch.cat'], times['dense gradients'])]
        low, median, high = statistics.quantiles(ratios, n=4)
        print(
            f"| {dtype} + channels-last | {statistics.median(times['torch.cat']):.0f} | "
            f"{statistics.median(times['dense gradients']):.0f} | {median:.3f}x ({low:.3f}-{high:.3f}) |",
            flush=True)


if __name__ == '__main__':
    main()
