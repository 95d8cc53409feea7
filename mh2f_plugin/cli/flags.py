"""The flags that several commands share: one spelling, one help text each.

The options file is ``-opt`` as BasicSR spells it; a network is ``--arch 'NAME:{yaml options}'``.
Spellings of earlier releases (``--opt``, ``derain --arch-opt``) still work and print a note.
"""
import argparse
import contextlib
import re
import sys
import torch
from dataclasses import dataclass

from mh2f_plugin.errors import OptionsError
from mh2f_plugin.models import engines
from mh2f_plugin.models.numerics import (AMP_DTYPES, AUTO, describe, resolve_amp, resolve_channels_last, resolve_engine,
                                         resolve_winograd)
from mh2f_plugin.models.winograd import use_winograd

AMP_CHOICES = {'auto': AUTO, 'bf16': 'bf16', 'fp16': 'fp16', 'off': None}
ENGINE_CHOICES = (AUTO, ) + engines.ENGINES
LAYOUT_CHOICES = {'auto': AUTO, 'on': True, 'off': False}
ARCH_HELP = "a registered network: NAME or 'NAME:{yaml options}', e.g. 'MH2FNet:{num_feat: 16}'"


def deprecation_note(prog, old, new):
    """Tells on stderr that ``old`` still works but ``new`` is the spelling to use."""
    print(f'{prog}: note: {old} is deprecated and will be removed; write {new}', file=sys.stderr)


class DeprecatedAlias(argparse.Action):
    """Stores the value like ``store`` (or ``append``); given as one of ``deprecated``, it also prints
    a note naming the spelling to use: ``instead``, by default the first option string."""

    def __init__(self, option_strings, dest, deprecated=(), instead=None, append=False, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.deprecated, self.instead, self.append = deprecated, instead or option_strings[0], append

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.deprecated:
            deprecation_note(parser.prog, option_string, self.instead)
        if self.append:
            values = (getattr(namespace, self.dest) or []) + [values]
        setattr(namespace, self.dest, values)


def add_options_file(parser, help, repeatable=False):
    """``-opt FILE.yml`` (``--opt`` deprecated); a list of files when ``repeatable``."""
    parser.add_argument(
        '-opt',
        '--opt',
        action=DeprecatedAlias,
        deprecated=('--opt', ),
        append=repeatable,
        default=[] if repeatable else None,
        metavar='FILE.yml',
        dest='opt',
        help=help + ('; repeatable' if repeatable else ''))


def add_arch(parser, help=ARCH_HELP, repeatable=False):
    """``--arch 'NAME:{yaml}'`` (a list when ``repeatable``); ``parse_arch_spec`` reads each."""
    parser.add_argument(
        '--arch',
        action='append' if repeatable else 'store',
        default=[] if repeatable else None,
        metavar="'NAME:{...}'",
        help=help + ('; repeatable' if repeatable else ''))


def add_param_key(parser):
    parser.add_argument(
        '--param-key',
        help='the key of the weights in a checkpoint (params_ema, params, or an official container); a file '
        'without it is refused. Default: params_ema if present, else params')


def add_zoo_dir(parser):
    parser.add_argument('--zoo-dir', help='zoo folder. Default: $MH2F_ZOO_DIR, else ~/.cache/mh2f_plugin')


def add_device(parser):
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu, cuda or cuda:N. Default: cuda when there is a GPU, else cpu')


def parse_device(text):
    """The ``torch.device`` of ``--device``; ``OptionsError`` for no device, or a CUDA device this machine lacks."""
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise OptionsError(f'--device {text!r}: not a device (cpu, cuda, cuda:1, ...)') from error
    if device.type == 'cuda' and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise OptionsError(f'--device {text}: no such CUDA device on this machine (use --device cpu)')
    return device


def add_tile(parser, help='restore in tiles of this many pixels, for images too large for memory'):
    parser.add_argument('--tile', type=int, help=help)
    parser.add_argument('--tile-overlap', type=int, default=32, help='pixels shared by neighbouring tiles')


def check_tile(args):
    """``OptionsError`` unless ``--tile`` is positive and ``--tile-overlap`` at least 0 and smaller."""
    if args.tile is not None and args.tile <= 0:
        raise OptionsError(f'--tile must be a positive number of pixels, got {args.tile}')
    if args.tile_overlap < 0 or (args.tile is not None and args.tile_overlap >= args.tile):
        raise OptionsError(f'--tile-overlap must be at least 0 and smaller than --tile, got {args.tile_overlap}')


def add_overwrite(parser, what):
    parser.add_argument('--overwrite', action='store_true', help=f'replace {what} that already exists')


def add_layout(parser, choices=None):
    parser.add_argument(
        '--layout', default='auto', choices=choices, help='dataset layout (see docs/datasets.md). Default: auto')


def parse_size(text, flag='--size'):
    """``(width, height)`` from ``WxH``; ``OptionsError`` naming ``flag`` otherwise."""
    if not re.fullmatch(r'[1-9]\d*x[1-9]\d*', text or ''):
        raise OptionsError(f'{flag} must be WxH in pixels, both at least 1, got {text!r}')
    return tuple(int(value) for value in text.split('x'))


def add_numerics(parser):
    """``--amp``, ``--channels-last``, ``--winograd`` and ``--engine``, for the commands that run a network."""
    parser.add_argument(
        '--amp',
        choices=tuple(AMP_CHOICES),
        default='auto',
        help='autocast: auto (bf16 where the device computes it natively), bf16, fp16, off. Default: auto')
    parser.add_argument(
        '--channels-last',
        choices=tuple(LAYOUT_CHOICES),
        nargs='?',
        const='on',
        default='auto',
        help='channels-last memory format: auto (where measured faster), on, off. Default: auto')
    parser.add_argument(
        '--winograd',
        choices=tuple(LAYOUT_CHOICES),
        default='auto',
        help="3x3 convolutions by NNPACK's Winograd transform in float32 on the CPU: auto (where measured "
        'faster), on, off. Default: auto')
    parser.add_argument(
        '--engine',
        choices=ENGINE_CHOICES,
        default='auto',
        help='what runs the network: torch, onnxruntime or openvino (on the CPU; the onnx and openvino extras), or '
        'auto (an engine where it was measured faster and is installed, else torch). Default: auto')


@dataclass
class Numerics:
    """How a command runs a network: ``runner`` (the network on its device and in its memory format,
    or an engine), the ``autocast`` context around it, and the ``memory_format`` of its inputs."""
    runner: object
    autocast: object
    memory_format: torch.memory_format


def resolve_numerics(args, net, device, network_opt=None, verbose=True):
    """The ``Numerics`` for ``args.amp`` / ``args.channels_last`` / ``args.winograd`` / ``args.engine``:
    ``net`` moved to ``device`` (its convolutions switched to Winograd where chosen), or the engine
    that runs it (``network_opt`` names its export); prints the choice."""
    arch = type(net).__name__
    amp, amp_reason = resolve_amp(AMP_CHOICES[args.amp], device, arch, inference=True)
    engine, precision, engine_reason = resolve_engine(args.engine, arch, device, amp)
    if engine != engines.TORCH:
        if verbose:
            print(f'numerics: engine {engine}, {precision} ({engine_reason})', file=sys.stderr)
        runner = engines.build_engine(engine, net.float().cpu().eval(), network_opt, precision)
        return Numerics(runner, contextlib.nullcontext(), torch.contiguous_format)
    winograd_choice = resolve_winograd(LAYOUT_CHOICES[args.winograd], arch, device, amp)
    channels_last, cl_reason = resolve_channels_last(
        LAYOUT_CHOICES[args.channels_last], arch, device, winograd_on=winograd_choice[0])
    if winograd_choice[0]:
        use_winograd(net)
    if verbose:
        print(
            describe(amp, amp_reason, channels_last, cl_reason=cl_reason, winograd_choice=winograd_choice) +
            f'; engine torch ({engine_reason})',
            file=sys.stderr)
    autocast = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) if amp else contextlib.nullcontext()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return Numerics(net.to(device, memory_format=memory_format).eval(), autocast, memory_format)
