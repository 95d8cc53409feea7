"""Convert an official checkpoint to BasicSR's format.

    basicsr convert-weights SRC DST [--arch 'NAME:{options}']

The layout is found from the keys (PReNet family, BRN, RESCAN, SPANet, RCDNet, VRGNet, MARD-Net,
JORDER-E, NLEDN, UMRL, and DDN's and SIRR's TensorFlow checkpoints: see
``mh2f_plugin.weights.official``). DST is ``{'params': state_dict, 'network_g': options}``:
BasicSR loads it as any checkpoint (``path.pretrain_network_g``), and ``basicsr derain`` /
``basicsr compare`` build the network it records. Options a file cannot tell (PReNet's residual
output in its ablations, stage counts, RESCAN's frame) come from ``--arch 'NAME:{options}'``.
"""
import os
from basicsr.utils.registry import ARCH_REGISTRY

from mh2f_plugin.cli.flags import add_arch, add_overwrite, add_param_key
from mh2f_plugin.errors import UserError
from mh2f_plugin.utils.options import parse_arch_spec
from mh2f_plugin.utils.options_validation import check_component
from mh2f_plugin.weights import zoo
from mh2f_plugin.weights.checkpoint import BASICSR, read_weights, save_converted

NAME = 'convert-weights'


def add_arguments(parser):
    parser.add_argument('src', help='the checkpoint as downloaded from its authors')
    parser.add_argument('dst', help='the BasicSR checkpoint to write (.pth)')
    add_arch(parser, help="the network, over what the file says: NAME or 'NAME:{yaml options}'")
    add_param_key(parser)
    add_overwrite(parser, 'a DST')


def run(args):
    requested = parse_arch_spec(args.arch) if args.arch else None
    if requested:
        check_component(requested, ARCH_REGISTRY, 'arch', where='--arch')
    if os.path.exists(args.dst) and not args.overwrite:
        raise UserError(f'{args.dst}: already exists (pass --overwrite to replace it)')
    source = read_weights(args.src, args.param_key).source
    if source == BASICSR:
        raise UserError(f'{args.src}: already a BasicSR checkpoint (params / params_ema); nothing to convert')
    net, network_opt = save_converted(
        args.src, args.dst, {
            **(zoo.catalogued_arch(args.src) or {}),
            **(requested or {})
        }, param_key=args.param_key)
    options = ', '.join(f'{k}: {v}' for k, v in network_opt.items() if k != 'type')
    count = sum(p.numel() for p in net.parameters())
    print(f"{args.src}: {source} -> {network_opt['type']} ({count:,} parameters; {options})\nwritten to {args.dst}")
