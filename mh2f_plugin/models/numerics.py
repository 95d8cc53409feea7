"""The numerics a network runs with on a device: autocast dtype and memory format, ``auto`` resolved.

``amp: auto`` picks bfloat16 autocast on CPUs that compute bf16 natively (AMX-BF16 or
AVX512-BF16); float32 on CUDA GPUs of compute capability 8.0 and up, where bf16 autocast was
measured slower than float32 in every family's training step and in MH2F-Net's inference (an
H200: the narrow convolutions of these networks gain less from bf16 than the casts cost; cuDNN
may run float32 convolutions as TF32 on these GPUs, PyTorch's default); float16 with a gradient
scaler on CUDA GPUs of compute capability 7.x (tensor cores, no TF32; not measured); float32
elsewhere. ``channels_last: auto``
uses the channels-last memory format where it was measured faster for the network's family on
CPUs (``CHANNELS_LAST_FASTER``, ``benchmarks/bench_numerics.py``), and always on CUDA (MH2F-Net
1.3x faster to train and 1.6x faster to run on the H200; the other families within their
timing noise). BENCHMARKS.md has the measurements. Explicit values (``bf16``, ``fp16``, ``~``;
``true``, ``false``) win, but one: training in bf16 channels-last on the CPU is refused for a
network with a convolution PyTorch gets wrong there (``bf16_channels_last_miscomputed``; ``auto``
then turns channels-last off, in ``DerainModel``). Each choice comes with the reason, for the log.
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


def cpu_bf16():
    """``(bool, reason)``: whether this CPU computes bfloat16 in hardware (AMX-BF16 or AVX512-BF16)."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, 'get_capabilities') else {}
    units = [name for name in ('amx_bf16', 'avx512_bf16') if capabilities.get(name)]
    name = capabilities.get('cpu_name', 'this CPU')
    return bool(units), f"{name} {'has ' + ' and '.join(units).upper() if units else 'has no bf16 unit'}"


def resolve_amp(setting, device):
    """``(None | 'bf16' | 'fp16', reason)`` for the ``amp`` option ``setting`` on ``device``."""
    if setting != AUTO:
        return setting, 'set in the options'
    if device.type == 'cuda':
        major, minor = torch.cuda.get_device_capability(device)
        gpu = f'{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})'
        if major >= 8:
            return None, f'auto: {gpu}: float32, measured faster than bf16 autocast on CUDA GPUs'
        if major >= 7:
            return 'fp16', f'auto: {gpu}: float16 tensor cores, no bfloat16'
        return None, f'auto: {gpu}: float32'
    bf16, reason = cpu_bf16()
    return ('bf16', f'auto: {reason}') if bf16 else (None, f'auto: {reason}: float32')


def resolve_channels_last(setting, arch, device):
    """``(bool, reason)`` for the ``channels_last`` option ``setting`` of network ``arch`` on ``device``."""
    if setting != AUTO:
        return bool(setting), 'set in the options'
    if device.type == 'cuda':
        return True, 'auto: on CUDA GPUs (measured faster for MH2FNet, within the timing noise for the others)'
    if arch in CHANNELS_LAST_FASTER:
        faster = CHANNELS_LAST_FASTER[arch]
        return faster, f"auto: measured {'faster' if faster else 'not faster'} for {arch} on CPUs"
    return False, f'auto: not measured for {arch}'


def bf16_channels_last_miscomputed(net):
    """The name of the first ``nn.Conv2d`` of ``net`` whose weight gradient PyTorch computes wrongly
    in bfloat16 channels-last on the CPU, or ``None``: a dilated convolution with more than 16 input
    channels, not a multiple of 16 (RESCAN's 24-channel GRUs). Measured with torch 2.14.1 (oneDNN)
    on an AMD EPYC with AVX512-BF16: the gradient comes out NaN or Inf, or the process crashes;
    float32, float16, the contiguous layout, the input gradient and the forward pass are right.
    ``tests/test_inference.py`` checks on each CPU it runs on that no other convolution is wrong.
    """
    for name, module in net.named_modules():
        if (isinstance(module, torch.nn.Conv2d) and max(module.dilation) > 1 and module.in_channels > 16
                and module.in_channels % 16):
            return name
    return None


def describe(amp, amp_reason, channels_last, cl_reason):
    """One log line for the resolved numerics."""
    return (f'numerics: autocast {amp or "off (float32)"} ({amp_reason}); '
            f'channels-last {"on" if channels_last else "off"} ({cl_reason})')
