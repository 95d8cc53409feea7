"""Parameters and GMACs of MH2F-Net variants, counted by ``mmengine.analysis`` (no timing).

    python benchmarks/complexity.py                       # N = 4, 6, 8, 10 at the default width
    python benchmarks/complexity.py --blocks 8 --options '{hierarchy_fusion: concat}'

GMACs are multiply-accumulates (what mmengine calls "flops") of one forward pass on one image.
"""
import argparse
import torch
import yaml
from mmengine.analysis import parameter_count

import mh2f_plugin  # noqa: F401
from mh2f_plugin.archs.mh2f_arch import MH2FNet
from mh2f_plugin.utils.measure import macs

SIZES = ((64, 64), (321, 481))


def complexity(options, sizes=SIZES):
    """``(parameters, [GMACs at each (H, W)])`` of ``MH2FNet(**options)``."""
    net = MH2FNet(**options).eval()
    return parameter_count(net)[''], [macs(net, (3, height, width)) / 1e9 for height, width in sizes]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--blocks', type=int, nargs='+', default=[4, 6, 8, 10])
    parser.add_argument('--options', default='{}', help='other MH2FNet options as YAML')
    args = parser.parse_args()
    options = yaml.safe_load(args.options) or {}
    header = ' | '.join(f'GMACs {w}x{h}' for h, w in SIZES)
    print(f'| N | parameters | {header} |\n| --- | --- |' + ' --- |' * len(SIZES))
    with torch.no_grad():
        for blocks in args.blocks:
            params, gmacs = complexity({**options, 'num_blocks': blocks})
            print(f'| {blocks} | {params / 1e6:.3f} M | ' + ' | '.join(f'{g:.2f}' for g in gmacs) + ' |')


if __name__ == '__main__':
    main()
