"""Tensor helpers shared by the archs and by whole-image inference."""
import torch.nn.functional as F


def pad_to_multiple(x, multiple):
    """``(B, C, H, W)`` padded on the bottom and right to multiples of ``multiple``.

    Reflection where the image is larger than the pad, else replication (reflection needs more
    pixels than it adds); ``x`` itself when no padding is needed.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
