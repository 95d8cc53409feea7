"""Measuring networks: multiply-accumulates (mmengine), and peak memory of a region of code.

Peak memory is the growth over the region's start: on CUDA, of allocated tensor memory; on the
CPU, of the process's resident set (Linux: ``/proc/self/clear_refs`` resets the high-water mark
``VmHWM``), Python objects and allocator caches included.
"""
import torch
from mmengine.analysis import FlopAnalyzer


def macs(net, shape):
    """Multiply-accumulates of one forward pass of ``net`` on one ``shape`` = (C, H, W) input."""
    device = next(net.parameters()).device
    analyzer = FlopAnalyzer(net, torch.rand(1, *shape, device=device))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer.total()


def _proc_status_kb(field):
    with open('/proc/self/status', encoding='ascii') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))


class PeakMemory:
    """``with PeakMemory(device) as peak: ...``; afterwards ``peak.mb`` is the growth in MiB."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.mb = None

    def _current(self):
        if self.device.type == 'cuda':
            return torch.cuda.memory_allocated(self.device)
        return _proc_status_kb('VmRSS') * 1024

    def _peak(self):
        if self.device.type == 'cuda':
            return torch.cuda.max_memory_allocated(self.device)
        return _proc_status_kb('VmHWM') * 1024

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
                f.write('5')
        self.start = self._current()
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        self.mb = (self._peak() - self.start) / 2**20
        return False
