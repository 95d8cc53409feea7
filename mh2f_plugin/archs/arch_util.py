"""Tensor helpers shared by the archs and by whole-image inference."""
import torch
import torch.nn.functional as F


def pad_to_size(x, height, width):
    """``(B, C, H, W)`` padded on the bottom and right to ``height`` x ``width`` (at least ``H`` x ``W``).

    Reflection where the image is larger than the pad, else replication (reflection needs more
    pixels than it adds); ``x`` itself when no padding is needed.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = height - h, width - w
    if pad_h == 0 and pad_w == 0:
        return x
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def pad_to_multiple(x, multiple):
    """``(B, C, H, W)`` padded on the bottom and right to multiples of ``multiple`` (``pad_to_size``)."""
    h, w = x.shape[-2:]
    return pad_to_size(x, h + -h % multiple, w + -w % multiple)


class ConcatWithDenseGradients(torch.autograd.Function):
    """``torch.cat(features, 1)`` whose backward gives each feature its gradient as a channels-last
    tensor of its own instead of a channel slice of the concatenation's gradient."""

    @staticmethod
    def forward(ctx, *features):
        ctx.channels = [feature.shape[1] for feature in features]
        return torch.cat(features, 1)

    @staticmethod
    def backward(ctx, grad):
        return tuple(part.contiguous(memory_format=torch.channels_last) for part in grad.split(ctx.channels, 1))


def concat_channels(features):
    """``torch.cat(features, 1)``: ``(B, C_i, H, W)`` features -> ``(B, sum C_i, H, W)``, same values
    and gradients.

    Training in bfloat16 channels-last on the CPU, each feature's gradient comes back as a dense
    tensor rather than a strided slice of the concatenation's: PyTorch's bfloat16 element-wise
    kernels (the gradient sums of features a dense block reuses, the activations' backward) run up
    to 10x slower on such slices (16 channels: 1.6 ms against 0.1 ms for an in-place add, torch
    2.14), while the copies cost less. In float32 they do not pay (``bench_optimisations.py``).
    """
    first = features[0]
    if (torch.is_grad_enabled() and first.device.type == 'cpu' and first.dtype == torch.bfloat16
            and not first.is_contiguous() and first.is_contiguous(memory_format=torch.channels_last)
            and any(feature.requires_grad for feature in features)):
        return ConcatWithDenseGradients.apply(*features)
    return torch.cat(features, 1)
