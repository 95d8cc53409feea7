"""Inference engines behind ``derain``, ``compare`` and ``test``: PyTorch, ONNX Runtime or OpenVINO.

An engine runs a network exported with its image procedure (``export.ImageProcedure``) and is
called as the network is, ``(B, C, H, W)`` float tensor in, same shape out, so that
``inference.restore`` tiles, pads and ensembles with it as with the network itself. Each network
is exported once (per weights, options and, for networks of a fixed size, image size) into the
engine cache, ``$MH2F_ENGINE_CACHE`` else ``~/.cache/mh2f_plugin/engines``, under a name that hashes
all of these. Compiled models are kept in memory per input shape, and OpenVINO keeps them on disk
too (its model cache). ONNX Runtime computes in float32; OpenVINO in float32 or bfloat16. The
seconds each new shape cost (export, compilation) are in ``first_call_seconds``.
"""
import hashlib
import json
import numpy as np
import os
import time
import torch

from mh2f_plugin.errors import UserError
from mh2f_plugin.models import export

TORCH, ONNXRUNTIME, OPENVINO = 'torch', 'onnxruntime', 'openvino'
ENGINES = (TORCH, ONNXRUNTIME, OPENVINO)
EXTRAS = {
    ONNXRUNTIME: "the onnx extra: pip install 'mh2f_plugin[onnx]'",
    OPENVINO: "the openvino extra: pip install 'mh2f_plugin[openvino]'",
}

KEPT_SHAPES = 4


class EngineError(UserError, RuntimeError):
    """An engine that is not installed, or that cannot run a network."""


def cache_dir():
    return os.path.expanduser(os.environ.get('MH2F_ENGINE_CACHE') or '~/.cache/mh2f_plugin/engines')


def network_key(net, network_opt):
    """A hash of everything the exported graph depends on: the network's options and weights, the
    image procedure's multiple, torch's version and the ONNX opset."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([type(net).__name__, network_opt, torch.__version__, export.OPSET], sort_keys=True,
                   default=str).encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def available(engine):
    """Whether ``engine``'s package imports."""
    try:
        __import__(engine)
    except ImportError:
        return False
    return True


class OnnxEngine:
    """A network run by an ONNX engine; subclasses ``compile(onnx file, input shape)`` and
    ``run(compiled, numpy array)``. The ``KEPT_SHAPES`` most recently used shapes stay compiled, so
    that photos of many sizes (a folder, the web page) do not pile up compiled models in memory;
    OpenVINO reads an evicted one back from its cache on disk."""

    name = ''

    def __init__(self, net, network_opt, precision='f32', threads=None):
        if not available(self.name):
            raise EngineError(f'--engine {self.name} needs {EXTRAS[self.name]}')
        if export.refusal_reason(net):
            raise EngineError(
                f'--engine {self.name}: {type(net).__name__} cannot run in it: {export.refusal_reason(net)}')
        self.net, self.precision = net, precision
        self.threads = threads or torch.get_num_threads()
        self.fixed_size = export.fixed_size_reason(net) is not None
        self.key = network_key(net, network_opt)
        self.compiled, self.first_call_seconds = {}, {}

    def onnx_file(self, shape):
        """The network's ONNX file for inputs of ``shape`` ``(B, C, H, W)`` in the cache, exported now
        if absent: one of dynamic size, or of this size for networks of a fixed size."""
        size = tuple(shape[-2:]) if self.fixed_size else None
        name = f'{type(self.net).__name__}-{self.key}-{shape[1]}ch' + (f'-{size[0]}x{size[1]}' if size else '')
        path = os.path.join(cache_dir(), name + '.onnx')
        if not os.path.isfile(path):
            export.export_onnx(self.net, path, size=size, channels=shape[1])
        return path

    def __call__(self, x):
        shape = tuple(x.shape)
        if shape in self.compiled:
            self.compiled[shape] = self.compiled.pop(shape)  # the most recently used last
        else:
            if len(self.compiled) == KEPT_SHAPES:
                self.compiled.pop(next(iter(self.compiled)))
            start = time.perf_counter()
            self.compiled[shape] = self.compile(self.onnx_file(shape), shape)
            self.first_call_seconds[shape] = time.perf_counter() - start
        out = self.run(self.compiled[shape], x.detach().float().cpu().contiguous().numpy())
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)


class OnnxRuntimeEngine(OnnxEngine):
    """ONNX Runtime on the CPU, float32; one session for every size where the graph is dynamic."""

    name = ONNXRUNTIME

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sessions = {}

    def compile(self, path, shape):
        if path not in self.sessions:
            import onnxruntime
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.log_severity_level = 3
            self.sessions[path] = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        return self.sessions[path]

    def run(self, compiled, array):
        return compiled.run(None, {export.INPUT: array})[0]


class OpenVinoEngine(OnnxEngine):
    """OpenVINO on the CPU, float32 or bfloat16 (``precision``), compiled for each input shape."""

    name = OPENVINO

    def compile(self, path, shape):
        import openvino
        core = openvino.Core()
        model = core.read_model(path)
        model.reshape({export.INPUT: list(shape)})
        config = {
            'INFERENCE_PRECISION_HINT': self.precision,
            'INFERENCE_NUM_THREADS': self.threads,
            'PERFORMANCE_HINT': 'LATENCY',
            'CACHE_DIR': os.path.join(cache_dir(), 'openvino'),
        }
        return core.compile_model(model, 'CPU', config)

    def run(self, compiled, array):
        return compiled(array)[0]


def build_engine(engine, net, network_opt, precision='f32'):
    """``net`` itself for ``torch``, else the engine that runs it (``precision``: ``f32`` or ``bf16``)."""
    if engine == TORCH:
        return net
    return {ONNXRUNTIME: OnnxRuntimeEngine, OPENVINO: OpenVinoEngine}[engine](net, network_opt, precision)
