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
timing noise). ``winograd: auto`` computes the 3x3 convolutions of float32 CPU inference with
NNPACK's Winograd transform (``mh2f_plugin.models.winograd``) for the families where that was
measured faster (``WINOGRAD_FASTER``), on AVX2 CPUs without AVX-512 (the only ones measured; on
AVX-512 CPUs oneDNN's direct method has twice the arithmetic peak); channels-last ``auto`` is then
off, as NNPACK reads NCHW. BENCHMARKS.md has the measurements. Explicit values (``bf16``, ``fp16``, ``~``;
``true``, ``false``) win, but one: training in bf16 channels-last on the CPU is refused for a
network with a convolution PyTorch gets wrong there (``bf16_channels_last_miscomputed``; ``auto``
then turns channels-last off, in ``DerainModel``). Each choice comes with the reason, for the log.
"""
import torch

from mh2f_plugin.errors import InvalidOption
from mh2f_plugin.models import engines, winograd

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
    'SIRR': True,  # False before its guided filter became cumulative sums (measured again on an AVX512-BF16 EPYC)
    'DDN': True,
    'DRDNet': True,
    'MARDNet': True,
    'JORDERE': True,
    'NLEDN': True,
    'UMRL': False,
    'VRGNet': True,
}

# Arch name -> was its float32 inference faster on the CPU with Winograd 3x3 convolutions in NCHW
# than with oneDNN's direct ones channels-last (481x321 forward, AMD EPYC with AVX2, 2 threads;
# benchmarks/bench_numerics.py --winograd). The LSTM gates' 64 -> 128 convolutions make the difference.
WINOGRAD_FASTER = {
    'PReNet': True,
    'PReNet_r': True,
    'BRN': True,
    'MH2FNet': False,
    'PRN': False,
    'PRN_r': False,
    'RESCAN': False,
    'SPANet': False,
}

# Precision -> arch -> the engine measured fastest for it on CPUs with bf16 units, at least 1.1x faster
# than PyTorch in that precision (481x321 forward, benchmarks/bench_engines.py, AMD EPYC family 26
# with AVX512-BF16: BENCHMARKS.md); ``engine: auto`` takes it when it is installed, else PyTorch.
# In bf16 only where it kept Rain100H within 0.05 dB of float32 with the zoo's weights, or where the
# zoo has none (MH2FNet, RCDNet, DRDNet; their random-weight outputs as far from float32 as PyTorch's
# bf16): not PReNet_r (-0.057 dB), PRN and PRN_r (float32 anyway), SIRR and DDN (-6 dB), nor the
# networks whose files are downloaded by hand (not measured). Networks of a fixed export size (NLEDN,
# NeRD-Rain) are left to PyTorch: each new image size would cost an export.
ENGINE_FASTER = {
    'f32': {
        arch: engines.OPENVINO
        for arch in ('MH2FNet', 'PReNet', 'PReNet_r', 'BRN', 'RCDNet', 'DRDNet', 'MARDNet', 'UMRL', 'VRGNet',
                     'Restormer', 'DRSformer', 'MPRNet')
    },
    'bf16': {
        arch: engines.OPENVINO
        for arch in ('MH2FNet', 'PReNet', 'BRN', 'RESCAN', 'RCDNet', 'DRDNet', 'MARDNet', 'JORDERE', 'UMRL', 'VRGNet')
    },
}

# Arch -> Rain100H PSNR change (dB) of bf16 inference against float32, where it exceeds 0.05 dB (the
# authors' Rain100H weights, PyTorch's bf16 autocast on an AMD EPYC with AVX512-BF16: BENCHMARKS.md).
# ``amp: auto`` keeps their inference in float32.
BF16_INFERENCE_LOSS = {'PRN': -0.059, 'PRN_r': -0.165}


def cpu_bf16():
    """``(bool, reason)``: whether this CPU computes bfloat16 in hardware (AMX-BF16 or AVX512-BF16)."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, 'get_capabilities') else {}
    units = [name for name in ('amx_bf16', 'avx512_bf16') if capabilities.get(name)]
    name = capabilities.get('cpu_name', 'this CPU')
    return bool(units), f"{name} {'has ' + ' and '.join(units).upper() if units else 'has no bf16 unit'}"


def resolve_amp(setting, device, arch=None, inference=False):
    """``(None | 'bf16' | 'fp16', reason)`` for the ``amp`` option ``setting`` on ``device``; for the
    ``inference`` of network ``arch``, float32 where bf16 was measured to cost it quality."""
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
    if bf16 and inference and arch in BF16_INFERENCE_LOSS:
        return None, (f'auto: {reason}, but bf16 moved {arch}\'s Rain100H PSNR by {BF16_INFERENCE_LOSS[arch]:+.2f} dB: '
                      'float32')
    return ('bf16', f'auto: {reason}') if bf16 else (None, f'auto: {reason}: float32')


def resolve_winograd(setting, arch, device, amp):
    """``(bool, reason)`` for the ``winograd`` option ``setting`` of network ``arch`` run with
    autocast ``amp`` on ``device``, for inference."""
    if device.type != 'cpu' or amp:
        return False, 'float32 on the CPU only'
    if not winograd.available():
        return False, 'this PyTorch has no NNPACK for this CPU'
    if setting != AUTO:
        return bool(setting), 'set in the options'
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != 'AVX2':
        return False, f'auto: measured on AVX2 CPUs only, and this one runs {capability}'
    if WINOGRAD_FASTER.get(arch):
        return True, f'auto: measured faster for {arch} on AVX2 CPUs'
    return False, f"auto: {'not faster' if arch in WINOGRAD_FASTER else 'not measured'} for {arch}"


def resolve_channels_last(setting, arch, device, winograd_on=False):
    """``(bool, reason)`` for the ``channels_last`` option ``setting`` of network ``arch`` on ``device``."""
    if setting != AUTO:
        return bool(setting), 'set in the options'
    if winograd_on:
        return False, 'auto: the Winograd convolutions read NCHW'
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


def resolve_engine(setting, arch, device, amp):
    """``(engine, precision, reason)`` for the ``engine`` option ``setting`` of network ``arch``, with
    the autocast ``amp`` resolved for ``device``; precision ``f32`` or ``bf16``, None for PyTorch."""
    if setting == engines.TORCH:
        return engines.TORCH, None, 'set in the options'
    if device.type != 'cpu':
        if setting == AUTO:
            return engines.TORCH, None, 'auto: the other engines run on the CPU here'
        raise InvalidOption(f'engine {setting} runs on the CPU here, not on {device.type}; use --device cpu')
    precision = 'bf16' if amp == 'bf16' else 'f32'
    if setting == AUTO:
        setting = ENGINE_FASTER.get(precision, {}).get(arch) if cpu_bf16()[0] else None
        if setting is None:
            return engines.TORCH, None, f'auto: no engine measured faster than PyTorch for {arch} in {precision} here'
        if not engines.available(setting):
            return engines.TORCH, None, f'auto: {setting} was measured faster for {arch} but is not installed'
        reason = f'auto: measured faster for {arch} in {precision} on CPUs with bf16 units'
    else:
        reason = 'set in the options'
    if setting == engines.ONNXRUNTIME and precision == 'bf16':
        return setting, 'f32', reason + '; ONNX Runtime computes in float32 on the CPU'
    return setting, precision, reason


def describe(amp, amp_reason, channels_last, cl_reason, winograd_choice=None):
    """One log line for the resolved numerics; ``winograd_choice`` is ``(bool, reason)`` for inference."""
    line = (f'numerics: autocast {amp or "off (float32)"} ({amp_reason}); '
            f'channels-last {"on" if channels_last else "off"} ({cl_reason})')
    if winograd_choice:
        line += f'; Winograd 3x3 convolutions {"on" if winograd_choice[0] else "off"} ({winograd_choice[1]})'
    return line
