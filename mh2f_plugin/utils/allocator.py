"""Freed memory kept for the next tensor, instead of being unmapped and faulted in again.

glibc's ``malloc`` serves every allocation above its mmap threshold (32 MiB at most) with fresh
pages from ``mmap`` and unmaps them on ``free``; a full-size feature map is such an allocation
(64 channels of 484x324 in float32: 40 MB), so on the CPU each layer's output pays a page fault
per 4 KiB. ``keep_freed_memory()`` tells ``malloc`` to serve everything from its heaps and never
trim them (blocks of 64 MiB and more may still be mapped afresh: a thread's secondary arena
cannot hold them): measured on a 2-core AMD EPYC (BENCHMARKS.md), MH2F-Net's 481x321 float32
forward 2.1x faster, its bf16 channels-last forward and training step about 1.1x. The cost: the process
keeps the memory of its peak until it exits. ``basicsr`` calls it at start on Linux with glibc
(elsewhere it does nothing); ``MH2F_KEEP_FREED_MEMORY=0`` leaves ``malloc`` as it is.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4


def keep_freed_memory():
    """Whether glibc's ``malloc`` now keeps freed memory (False where there is no glibc, or when
    ``MH2F_KEEP_FREED_MEMORY=0``)."""
    if os.environ.get('MH2F_KEEP_FREED_MEMORY', '1') == '0':
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library('c')).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
