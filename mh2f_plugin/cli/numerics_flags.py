"""``--amp`` and ``--channels-last`` for the commands that run a network (derain, compare)."""
import contextlib
import sys
import torch

from mh2f_plugin.models.numerics import AMP_DTYPES, AUTO, describe, resolve_amp, resolve_channels_last

AMP_CHOICES = {'auto': AUTO, 'bf16': 'bf16', 'fp16': 'fp16', 'off': None}
LAYOUT_CHOICES = {'auto': AUTO, 'on': True, 'off': False}


def add_numerics_flags(parser):
    parser.add_argument(
        '--amp',
        choices=tuple(AMP_CHOICES),
        default='auto',
        help='autocast: auto (bf16 where the device computes it natively), bf16, fp16, off. '
        'Default: auto')
    parser.add_argument(
        '--channels-last',
        choices=tuple(LAYOUT_CHOICES),
        nargs='?',
        const='on',
        default='auto',
        help='channels-last memory format: auto (where measured faster), on, off. Default: auto')


def resolve_numerics(args, arch, device, verbose=True):
    """``(autocast context, memory format)`` for ``args.amp`` / ``args.channels_last``; prints the choice."""
    amp, amp_reason = resolve_amp(AMP_CHOICES[args.amp], device)
    channels_last, cl_reason = resolve_channels_last(LAYOUT_CHOICES[args.channels_last], arch, device)
    if verbose:
        print(describe(amp, amp_reason, channels_last, cl_reason), file=sys.stderr)
    autocast = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) if amp else contextlib.nullcontext()
    return autocast, torch.channels_last if channels_last else torch.contiguous_format
