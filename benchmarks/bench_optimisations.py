"""MH2F-Net's speed-ups, each timed against what it replaced, in float32 and in bf16 autocast
(channels-last). All keep the network's function and its checkpoints.

``--compare gradients``: the concatenations handing back dense gradients
(``ConcatWithDenseGradients``) against plain ``torch.cat``; ``concat_channels`` uses the former
only in bf16 channels-last training on the CPU. ``--compare growth``: the DCR block's dense input
grown by one feature at a time (``cat[dense, f_i]``, what ``DCRBlock`` does) against the
concatenation of all the features at each layer (``cat[x, f_1, ..., f_i]``, the textbook form).
``--compare statistics``: the dual attention's channel mean and max with their own backward
(``ChannelMeanMax``) against autograd's.

Both alternatives run in one process on one network, call by call in alternation (the order
swapped every pair), so that the drift of a shared machine's speed falls on both alike. ``--task
step``: forward, ``L1SSIMLoss``, backward and Adam on a batch of random crops, as
``bench_speed.py`` times it; ``--task forward``: one 481x321 image without gradients. Prints the
median time of each and the quartiles of the per-pair ratio ``replaced / adopted`` (above 1: what
the network does is faster).

    python benchmarks/bench_optimisations.py --compare gradients --pairs 20
    python benchmarks/bench_optimisations.py --compare gradients --num-feat 16 --num-blocks 4 --batch 8 --crop 48
    python benchmarks/bench_optimisations.py --compare growth --task forward --pairs 12
    python benchmarks/bench_optimisations.py --compare statistics --pairs 16
"""
import argparse
import statistics
import time
import torch
from bench_speed import device_name
from types import SimpleNamespace
from unittest import mock

import mh2f_plugin.archs.mh2f_arch as mh2f_arch
from mh2f_plugin.archs.arch_util import ConcatWithDenseGradients
from mh2f_plugin.losses.ssim_loss import L1SSIMLoss
from mh2f_plugin.utils.allocator import keep_freed_memory


def _all_features_at_once(block, x):
    dense, features = x, [x]
    for layer in block.layers:
        features.append(block.act(layer(dense)))
        dense = mh2f_arch.concat_channels(features)
    return x + block.fuse(dense)


def _mean_max_by_autograd(x):
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    return torch.cat([wide.mean(1, keepdim=True), wide.amax(1, keepdim=True)], 1)


# name: (what is replaced, attribute, {label: value}), the adopted one last
COMPARISONS = {
    'gradients': (mh2f_arch, 'concat_channels', {
        'torch.cat': lambda features: torch.cat(features, 1),
        'dense gradients': lambda features: ConcatWithDenseGradients.apply(*features)
    }),
    'growth': (mh2f_arch.DCRBlock, 'forward', {
        'all features at once': _all_features_at_once,
        'one feature at a time': mh2f_arch.DCRBlock.forward
    }),
    'statistics': (mh2f_arch, 'ChannelMeanMax', {
        'autograd': SimpleNamespace(apply=_mean_max_by_autograd),
        'ChannelMeanMax': mh2f_arch.ChannelMeanMax
    }),
}


def _task(task, dtype, batch, crop, network_options):
    """A function that runs ``task`` once on ``MH2FNet(**network_options)``, channels-last."""
    torch.manual_seed(0)
    net = mh2f_arch.MH2FNet(**network_options).to(memory_format=torch.channels_last)
    autocast = dict(device_type='cpu', dtype=torch.bfloat16, enabled=dtype == 'bf16')
    if task == 'forward':
        net.eval()
        image = torch.rand(1, 3, 321, 481).to(memory_format=torch.channels_last)

        def forward():
            with torch.no_grad(), torch.autocast(**autocast):
                net(image)

        return forward
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = L1SSIMLoss()
    lq = torch.rand(batch, 3, crop, crop).to(memory_format=torch.channels_last)
    gt = torch.rand(batch, 3, crop, crop)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(**autocast):
            loss = loss_fn(net(lq), gt)
        loss.backward()
        optimizer.step()

    return step


def compare(comparison, task, dtype, pairs, batch, crop, network_options):
    """``{label: [ms per call, ...]}`` for each alternative of ``COMPARISONS[comparison]``,
    ``pairs`` calls each of ``task`` (``'step'`` or ``'forward'``) in ``dtype`` (``'fp32'``, or
    ``'bf16'`` autocast)."""
    owner, attribute, alternatives = COMPARISONS[comparison]
    run = _task(task, dtype, batch, crop, network_options)

    def ms(label):
        with mock.patch.object(owner, attribute, alternatives[label]):
            start = time.perf_counter()
            run()
            return (time.perf_counter() - start) * 1e3

    for label in list(alternatives) * 2:  # warm-up
        ms(label)
    times = {label: [] for label in alternatives}
    for pair in range(pairs):
        for label in (list(alternatives) if pair % 2 == 0 else list(alternatives)[::-1]):
            times[label].append(ms(label))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--compare', choices=list(COMPARISONS), default='gradients')
    parser.add_argument('--task', choices=['step', 'forward'], default='step')
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--pairs', type=int, default=20)
    parser.add_argument('--batch', type=int, default=16, help='training step only')
    parser.add_argument('--crop', type=int, default=64, help='training step only')
    parser.add_argument('--num-feat', type=int, default=32)
    parser.add_argument('--num-blocks', type=int, default=8)
    args = parser.parse_args()
    keep_freed_memory()
    what = f'batch {args.batch} of {args.crop}x{args.crop}' if args.task == 'step' else 'one 481x321 image'
    print(f'Device: {device_name(torch.device("cpu"), torch.get_num_threads())}; MH2FNet(num_feat={args.num_feat}, '
          f'num_blocks={args.num_blocks}), {args.task}, {what}\n')
    alternative, adopted = COMPARISONS[args.compare][2]
    print(f'| numerics | {alternative} ms | {adopted} ms | ratio: median (quartiles) |')
    print('| --- | --- | --- | --- |')
    for dtype in args.dtypes:
        times = compare(args.compare, args.task, dtype, args.pairs, args.batch, args.crop, {
            'num_feat': args.num_feat,
            'num_blocks': args.num_blocks
        })
        ratios = [a / b for a, b in zip(times[alternative], times[adopted])]
        low, median, high = statistics.quantiles(ratios, n=4)
        print(
            f'| {dtype} + channels-last | {statistics.median(times[alternative]):.0f} | '
            f'{statistics.median(times[adopted]):.0f} | {median:.3f}x ({low:.3f}-{high:.3f}) |',
            flush=True)


if __name__ == '__main__':
    main()
