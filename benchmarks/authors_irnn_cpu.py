"""A CPU port of SPANet's IRNN (stevewongv/SPANet ``IRNN_Forward_cuda.cu``), for ``bench_authors.py``.

The authors' IRNN is a CUDA kernel compiled by cupy, so their test script cannot run on a CPU.
``bench_authors.py`` copies this file over ``irnn.py`` in its copy of their repository. It keeps
their interface, ``irnn()(x, w_up, w_right, w_down, w_left, b_up, b_right, b_down, b_left)`` with
``x`` ``(B, C, H, W)`` and 1x1 depthwise weights and biases of ``C``, and computes what the kernel
computes, one row or column at a time instead of one pixel at a time:
``out_left[w] = relu(out_left[w + 1] * w_left + b_left + x[w])``, starting at ``relu(x[W - 1])``,
and likewise to the right, up (from the bottom row) and down (from the top row).
It does not reuse ``mh2f_plugin.archs.spanet_arch``: importing the plugin would add its start-up
to the authors' timed script, and this keeps the kernel's own order of operations.
"""
import torch


def _scan(x, weight, bias, dim, reverse):
    """The recurrence along ``dim`` of ``x`` (from the far end when ``reverse``)."""
    weight, bias = weight.view(1, -1, 1, 1), bias.view(1, -1, 1, 1)
    size = x.shape[dim]
    order = range(size - 1, -1, -1) if reverse else range(size)
    out = torch.empty_like(x)
    previous = None
    for i in order:
        current = x.narrow(dim, i, 1)
        previous = current.clamp_min(0) if previous is None else (previous * weight + bias + current).clamp_min(0)
        out.narrow(dim, i, 1).copy_(previous)
    return out


class irnn:  # noqa: N801 -- the authors' name, which their SPANet.py imports
    """``irnn()(x, weights..., biases...) -> (up, right, down, left)``, each ``(B, C, H, W)``."""

    def __call__(self, x, w_up, w_right, w_down, w_left, b_up, b_right, b_down, b_left):
        return (_scan(x, w_up, b_up, dim=2, reverse=True), _scan(x, w_right, b_right, dim=3, reverse=False),
                _scan(x, w_down, b_down, dim=2, reverse=False), _scan(x, w_left, b_left, dim=3, reverse=True))
