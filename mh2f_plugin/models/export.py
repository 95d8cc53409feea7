"""ONNX export of a restorer with the image procedure that belongs to it.

The exported graph is ``ImageProcedure``: the input ``rainy`` ``(1, C, H, W)`` in [0, 1], padded at
the bottom and right (reflection) to the network's multiple (``inference.size_multiple``), the
network, the output cropped back and clamped to [0, 1] as ``derained``. H and W stay dynamic, but
for networks whose graph depends on the image's size (``export_fixed_size``: NLEDN's regions,
NeRD-Rain's windows), which are exported at one fixed size, and for those that cannot be exported
at all (``export_refusal``: SPANet's IRNN recurrences), which are refused. The export uses
PyTorch's ``torch.export``-based exporter, needs the ``onnx`` extra, and is checked with ONNX's
checker. The file is written atomically.
"""
import os
import torch
import warnings
from torch import nn

from mh2f_plugin.archs.arch_util import pad_to_multiple
from mh2f_plugin.errors import UserError
from mh2f_plugin.models.inference import checked_output, size_multiple
from mh2f_plugin.utils.atomic_write import write_bytes_atomically

EXTRA = "the onnx extra: pip install 'mh2f_plugin[onnx]' (onnx, onnxscript, onnxruntime)"
INPUT, OUTPUT = 'rainy', 'derained'
OPSET = 18


class ExportError(UserError, RuntimeError):
    """A network that cannot be exported as asked, or an export that failed."""


class ImageProcedure(nn.Module):
    """``net`` with its padding, cropping and clamping: ``(B, C, H, W) -> (B, C, H, W)`` in [0, 1]."""

    def __init__(self, net, multiple):
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, rainy):
        height, width = rainy.shape[-2:]
        return self.net(pad_to_multiple(rainy, self.multiple))[..., :height, :width].clamp(0, 1)


def fixed_size_reason(net):
    """Why ``net`` exports only at a fixed size, or None."""
    return getattr(net, 'export_fixed_size', None)


def refusal_reason(net):
    """Why ``net`` cannot be exported at all, or None."""
    return getattr(net, 'export_refusal', None)


def check_exportable(net, size):
    """``ExportError`` naming the network and why, for a network that cannot be exported, or not
    with a dynamic size when ``size`` (``(H, W)``) is None."""
    name = type(net).__name__
    if refusal_reason(net):
        raise ExportError(f'{name} cannot be exported to ONNX: {refusal_reason(net)}')
    if size is None and fixed_size_reason(net):
        raise ExportError(f'{name} exports only at a fixed size ({fixed_size_reason(net)}); pass --size WxH')


def _onnx():
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as error:
        raise ExportError(f'exporting to ONNX needs {EXTRA}') from error
    return onnx


def _export(procedure, example, dynamic, optimize):
    with warnings.catch_warnings():  # the exporter's own notes on how it traced
        warnings.simplefilter('ignore')
        return torch.onnx.export(
            procedure, (example, ),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            dynamo=True,
            optimize=optimize,
            verbose=False,
            report=False)


def export_onnx(net, path, size=None, channels=3):
    """Writes ``net`` with its image procedure to the ONNX file ``path``: dynamic H and W, or the
    fixed ``size`` ``(H, W)``; checks it with ONNX's checker. ``net`` stays in float32 on the CPU."""
    onnx = _onnx()
    check_exportable(net, size)
    procedure = ImageProcedure(net.float().cpu().eval(), size_multiple(net)).eval()
    height, width = size or (2 * max(procedure.multiple, 32) + 3, 2 * max(procedure.multiple, 32) + 5)
    example = torch.rand(1, channels, height, width)
    with torch.no_grad():
        padded = pad_to_multiple(example, procedure.multiple)
        checked_output(net, net(padded), padded)  # a network that changes the size is no restorer
    dynamic = None if size else {'rainy': {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}}
    try:
        program = _export(procedure, example, dynamic, optimize=True)
    except Exception:  # onnxscript's graph optimiser fails on some graphs (MPRNet's): export them as they are
        try:
            program = _export(procedure, example, dynamic, optimize=False)
        except Exception as error:  # the exporter raises many kinds; each means this network does not export
            detail = ' '.join(str(error).split())[:300]
            raise ExportError(f'{type(net).__name__}: the ONNX export failed ({type(error).__name__}: {detail})') \
                from error
    model = program.model_proto
    onnx.checker.check_model(model, full_check=True)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_bytes_atomically(path, model.SerializeToString())
    except OSError as error:
        raise ExportError(f'{path}: cannot write: {error.strerror or error}') from error
    return model
