"""The numerics a network runs with on a device: autocast dtype and memory format, ``auto`` resolved.

``amp: auto`` picks bfloat16 autocast where the device computes bf16 natively (CPUs with AMX-BF16
or AVX512-BF16, CUDA GPUs of compute capability 8.0 and up), float16 with a gradient scaler on
older CUDA GPUs with tensor cores (7.x), and float32 elsewhere. ``channels_last: auto`` uses the
channels-last memory format where it was measured faster for the network's family on that kind
of device (``CHANNELS_LAST_FASTER``, measured by ``benchmarks/bench_numerics.py``; on CUDA,
convolutional networks are channels-last under autocast, cuDNN's preferred layout for tensor
cores). Explicit values (``bf16``, ``fp16``, ``~``; ``true``, ``false``) always win. Each choice
comes with the reason, for the log.
"""
import torch

AMP_DTYPES = {None: None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
AUTO = 'auto'

# Arch name -> is channels-last faster on the CPU (float32 and bf16 forward and training step,
# benchmarks/bench_numerics.py on the CPUs named in BENCHMARKS.md).
CHANNELS_LAST_FASTER = {
    'MH2FNet': True,
    'PReNet': True,
    'PRN': True,
    'PReNet_r': True,
    'PRN_r': True,
    'BRN': True,
    'RESCAN': True,
    'SPANet': False,
    'RCDNet': True,
    'SIRR': False,
    'DRDNet': True,
}


def native_bf16(device):
    """``(bool, reason)``: whether ``device`` computes bfloat16 in hardware."""
    if device.type == 'cuda':
        major, minor = torch.cuda.get_device_capability(device)
        return major >= 8, f'{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})'
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, 'get_capabilities') else {}
    units = [name for name in ('amx_bf16', 'avx512_bf16') if capabilities.get(name)]
    name = capabilities.get('cpu_name', 'this CPU')
    return bool(units), f"{name} {'has ' + ' and '.join(units).upper() if units else 'has no bf16 unit'}"


def resolve_amp(setting, device):
    """``(None | 'bf16' | 'fp16', reason)`` for the ``amp`` option ``setting`` on ``device``."""
    if setting != AUTO:
        return setting, 'set in the options'
    bf16, reason = native_bf16(device)
    if bf16:
        return 'bf16', f'auto: {reason}'
    if device.type == 'cuda' and torch.cuda.get_device_capability(device)[0] >= 7:
        return 'fp16', f'auto: {reason}: float16 tensor cores, no bfloat16'
    return None, f'auto: {reason}: float32'


def resolve_channels_last(setting, arch, device):
    """``(bool, reason)`` for the ``channels_last`` option ``setting`` of network ``arch`` on ``device``."""
    if setting != AUTO:
        return bool(setting), 'set in the options'
    if device.type == 'cuda':
        return True, 'auto: channels-last is cuDNN\'s layout for convolutions on tensor cores'
    if arch in CHANNELS_LAST_FASTER:
        faster = CHANNELS_LAST_FASTER[arch]
        return faster, f"auto: measured {'faster' if faster else 'not faster'} for {arch} on CPUs"
    return False, f'auto: not measured for {arch}'


def describe(amp, amp_reason, channels_last, cl_reason):
    """One log line for the resolved numerics."""
    return (f'numerics: autocast {amp or "off (float32)"} ({amp_reason}); '
            f'channels-last {"on" if channels_last else "off"} ({cl_reason})')
