"""3x3 convolutions through NNPACK's Winograd transform, for float32 inference on the CPU.

A 3x3 convolution computed with Winograd's F(6x6, 3x3) transform (NNPACK, which PyTorch ships)
needs about a fifth of the multiplications of the direct method oneDNN uses. Where the direct
convolutions already run at the matrix-multiply peak (an AVX2 CPU), that is the only way left to
be faster in float32. The results differ from the direct ones by rounding, about 1e-6 of their
range; the published figures do not move (``docs/numerics.md``).

``use_winograd(net)`` switches every eligible ``nn.Conv2d`` of ``net`` (3x3, stride 1, no dilation,
one group, zero padding); the switched ones take the Winograd path only for float32 CPU tensors
with gradients off (``torch.no_grad``, ``torch.inference_mode``) and no autocast, and the direct
one otherwise, so training and autocast are unchanged; so is tracing, so that ``mmengine``'s
counter still sees convolutions. Inputs ``(B, C, H, W)``, any memory format.
"""
import torch
from torch import nn


def available():
    """Whether this PyTorch build has NNPACK and this CPU runs it. NNPACK is initialised by this
    check, and every call fails until it has run."""
    return torch.backends.nnpack.is_available()


def eligible(module):
    """Whether ``module`` is a convolution NNPACK's Winograd path computes."""
    return (type(module) is nn.Conv2d and module.kernel_size == (3, 3) and module.stride == (1, 1)
            and module.dilation == (1, 1) and module.groups == 1 and module.padding_mode == 'zeros'
            and isinstance(module.padding, tuple))


class _WinogradForward:
    """``conv._conv_forward`` replacement: NNPACK for float32 CPU inference, the direct method otherwise."""

    def __init__(self, conv):
        self.direct = conv._conv_forward
        self.padding = list(conv.padding)

    def __call__(self, x, weight, bias):
        if (x.device.type != 'cpu' or x.dtype != torch.float32 or torch.is_grad_enabled()
                or torch.is_autocast_enabled('cpu') or torch.jit.is_tracing()):
            return self.direct(x, weight, bias)
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, self.padding, [1, 1])


def use_winograd(net):
    """Switch ``net``'s eligible convolutions to the Winograd path; returns how many were switched
    (none where NNPACK is not available)."""
    if not available():
        return 0
    switched = 0
    for module in net.modules():
        if eligible(module) and not isinstance(module.__dict__.get('_conv_forward'), _WinogradForward):
            module._conv_forward = _WinogradForward(module)
            switched += 1
    return switched
