"""Run a serialized TensorRT plan with torch CUDA tensors as its device buffers.

:class:`TrtModel` has the interface of the onnxruntime ``OrtModel`` (``load``, ``input_names``,
``output_names``, ``run``) plus ``run_torch``, which keeps tensors on the GPU. Before a plan is
deserialized its ``<plan>.json`` metadata is checked against the installed TensorRT and the
current GPU: a plan only runs under the TensorRT version and compute capability that built it.

``tensorrt`` and ``torch`` are imported inside functions, so ``t2i_export`` can import the
metadata helpers here without either installed.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_engines.errors import EngineError

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

METADATA_SCHEMA = 1
INSTALL_HINT = "pip install 't2i-sdk[gpu]'"
REBUILD_CMD = "t2i-export tensorrt <src> <out>"


class TensorRTUnavailable(EngineError, RuntimeError):
    """``tensorrt`` cannot be imported, or no CUDA GPU is visible to torch."""


class EngineMismatch(EngineError, RuntimeError):
    """A plan was built by another TensorRT version or for another GPU architecture, or its
    metadata is missing: it must be rebuilt on this machine."""


def metadata_path(engine_path: str | Path) -> Path:
    """``unet.plan`` -> ``unet.plan.json``: the build metadata written beside every plan."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def read_metadata(engine_path: str | Path, *, rebuild_cmd: str = REBUILD_CMD) -> dict:
    """The parsed ``<plan>.json``; a missing or unreadable file raises :class:`EngineMismatch`
    (without it the plan's TensorRT version and GPU cannot be checked)."""
    path = metadata_path(engine_path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineMismatch(f"{path}: engine metadata missing or unreadable ({exc}); "
                             f"rebuild the engine with: {rebuild_cmd}") from exc
    if not isinstance(meta, dict) or meta.get("schema") != METADATA_SCHEMA:
        raise EngineMismatch(f"{path}: unknown engine metadata schema "
                             f"{meta.get('schema') if isinstance(meta, dict) else None!r} "
                             f"(expected {METADATA_SCHEMA}); rebuild with: {rebuild_cmd}")
    return meta


def check_compatible(meta: dict, *, trt_version: str, compute_capability: tuple[int, int],
                     rebuild_cmd: str) -> None:
    """Raise :class:`EngineMismatch` unless ``meta`` (a plan's metadata) was built by TensorRT
    ``trt_version`` for a GPU of ``compute_capability`` (major, minor). TensorRT plans are not
    portable across either; the message names both sides and ``rebuild_cmd``."""
    built_version = meta.get("tensorrt_version")
    built_cc = meta.get("compute_capability")
    built_cc = tuple(built_cc) if isinstance(built_cc, (list, tuple)) else None
    here_cc = tuple(compute_capability)
    differs = [what for what, same in (("TensorRT version", built_version == trt_version),
                                       ("compute capability", built_cc == here_cc)) if not same]
    if differs:
        verb = "differ" if len(differs) > 1 else "differs"
        raise EngineMismatch(
            f"{' and '.join(differs)} {verb}: the engine was built with TensorRT "
            f"{built_version} for compute capability {_cc(built_cc)} "
            f"({meta.get('gpu_name', 'unknown GPU')}), this machine has TensorRT {trt_version} "
            f"and compute capability {_cc(here_cc)}. TensorRT engines only run where they were "
            f"built; rebuild with: {rebuild_cmd}")


def _cc(cc) -> str:
    return "unknown" if cc is None else ".".join(str(v) for v in cc)


def require_tensorrt(device_index: int | None = None):
    """``(tensorrt, torch)`` modules, or :class:`TensorRTUnavailable` naming what is missing.

    Needs the ``tensorrt`` wheel and a torch build that sees a CUDA GPU (its buffers and streams
    carry the data); ``device_index`` additionally checks that GPU exists.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(f"the TensorRT Python package is not installed ({exc}); "
                                  f"install it with: {INSTALL_HINT}") from exc
    try:
        import torch
    except ImportError as exc:
        raise TensorRTUnavailable("TensorRT engines need torch with CUDA for device buffers; "
                                  "install a CUDA build of torch, then " + INSTALL_HINT) from exc
    if not torch.cuda.is_available():
        raise TensorRTUnavailable(
            "TensorRT needs a CUDA GPU, and torch sees none (no NVIDIA GPU/driver, "
            "CUDA_VISIBLE_DEVICES hides it, or torch is a CPU-only build); on a GPU machine "
            f"install a CUDA build of torch and {INSTALL_HINT}")
    if device_index is not None and not 0 <= device_index < torch.cuda.device_count():
        raise TensorRTUnavailable(f"no CUDA device cuda:{device_index} "
                                  f"({torch.cuda.device_count()} visible)")
    return trt, torch


def cuda_device_index(device: str) -> int:
    """``"auto"`` / ``"cuda"`` -> the current CUDA device, ``"cuda:i"`` -> i; anything else
    raises ValueError (TensorRT runs only on CUDA GPUs)."""
    if device in ("auto", "cuda"):
        return -1  # resolved against torch.cuda.current_device() once torch is imported
    kind, _, index = device.partition(":")
    if kind != "cuda" or not index.isdigit():
        raise ValueError(f"TensorRT engines run only on CUDA GPUs; got device {device!r} "
                         "(use 'auto', 'cuda' or 'cuda:<i>')")
    return int(index)


class TrtModel:
    """One deserialized plan and its execution context on one GPU. Use :meth:`load`.

    With ``static_shapes=True`` the second call with the same input shapes captures the
    engine launch in a CUDA graph, and later calls with those shapes replay it (fewer CPU
    launch costs); a new shape drops the graph and runs eagerly again.
    """

    def __init__(self, trt, engine, path: Path, device_index: int, meta: dict, *,
                 static_shapes: bool):
        import torch

        self.path = path
        self.meta = meta  # the plan's <plan>.json
        self.device = f"cuda:{device_index}"  # where run_torch's outputs live
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = torch.cuda.Stream(device=self.device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self._dtypes = {n: _torch_dtype(trt, engine.get_tensor_dtype(n)) for n in names}
        self.input_dtypes = {n: _numpy_dtype(trt, engine.get_tensor_dtype(n))
                             for n in self.input_names}  # as OrtModel.input_dtypes
        self._graphs = _GraphCache() if static_shapes else None

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", static_shapes: bool = False,
             rebuild_cmd: str | None = None) -> TrtModel:
        """Load the plan at ``path`` (with its ``<plan>.json``) onto ``device`` ("auto", "cuda",
        "cuda:i"). Raises :class:`TensorRTUnavailable` without TensorRT or a GPU and
        :class:`EngineMismatch` when the plan was built elsewhere - both before deserializing."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no TensorRT plan at {path} (file missing)")
        index = cuda_device_index(device)
        meta = read_metadata(path, rebuild_cmd=rebuild_cmd or REBUILD_CMD)
        rebuild_cmd = rebuild_cmd or meta.get("rebuild_cmd") or REBUILD_CMD
        trt, torch = require_tensorrt(None if index < 0 else index)
        index = torch.cuda.current_device() if index < 0 else index
        check_compatible(meta, trt_version=trt.__version__,
                         compute_capability=tuple(torch.cuda.get_device_capability(index)),
                         rebuild_cmd=rebuild_cmd)
        with torch.cuda.device(index):
            logger = trt.Logger(trt.Logger.WARNING)
            runtime = trt.Runtime(logger)
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineMismatch(f"{path}: TensorRT could not deserialize the plan (corrupt "
                                     f"or built for another setup); rebuild with: {rebuild_cmd}")
            model = cls(trt, engine, path, index, meta, static_shapes=static_shapes)
        model._keep_alive = (logger, runtime)  # the engine must not outlive its runtime
        return model

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host arrays in, host arrays out: ``{output_name: array}`` in ``output_names`` order.
        Inputs are cast to the engine's input dtypes (e.g. float64 -> float32)."""
        import numpy as np
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(value))
                   for name, value in feeds.items()}
        outputs = self.run_torch(tensors)
        return {name: t.cpu().numpy() for name, t in outputs.items()}

    def run_torch(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Tensors in (any device; moved/cast to this GPU and the engine dtypes), CUDA tensors
        out, ordered like ``output_names``. The engine runs on its own stream, ordered after
        the caller's current stream and before anything queued on it afterwards, so results
        are safe to use there without synchronizing."""
        import torch

        self._check_names(feeds)
        with torch.cuda.device(self.device):  # TensorRT launches on the current CUDA device
            inputs = {n: feeds[n].to(self.device, self._dtypes[n]).contiguous()
                      for n in self.input_names}
            if self._graphs is not None:
                return self._graphs.run(self, inputs)
            return self._launch(lambda: self._enqueue(inputs))

    def _check_names(self, feeds) -> None:
        missing = [n for n in self.input_names if n not in feeds]
        unknown = [n for n in feeds if n not in self.input_names]
        if missing or unknown:
            raise ValueError(f"engine inputs are {self.input_names}; missing {missing}, "
                             f"unknown {unknown}")

    def _launch(self, launch):
        """Run ``launch()`` (which queues work on the engine stream) between two stream waits.

        Tensors are allocated on the caller's stream, never on the engine stream: the caching
        allocator then reuses their memory only for work queued after the wait below."""
        import torch

        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)  # inputs may still be being written on it
        result = launch()
        current.wait_stream(self._stream)
        return result

    def _enqueue(self, inputs: dict) -> dict:
        """Set shapes and addresses, allocate outputs, queue the engine on its stream."""
        import torch

        for name, tensor in inputs.items():
            if not self._context.set_input_shape(name, tuple(tensor.shape)):
                raise ValueError(self._shape_error(name, tuple(tensor.shape)))
        outputs = {}
        for name in self.output_names:
            shape = tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RuntimeError(f"output {name!r} has a data-dependent shape {shape}; "
                                   "not supported")
            outputs[name] = torch.empty(shape, dtype=self._dtypes[name], device=self.device)
        for name, tensor in {**inputs, **outputs}.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        return outputs

    def _shape_error(self, name: str, shape: tuple) -> str:
        profile = self.meta.get("profile") or {}
        low = (profile.get("min") or {}).get(name)
        high = (profile.get("max") or {}).get(name)
        return (f"input {name!r} shape {shape} is outside the engine's optimization profile "
                f"(min {low}, max {high}); rebuild with a wider profile")


class _GraphCache:
    """CUDA-graph replay for repeated input shapes. Call 1 with a shape runs eagerly; call 2
    copies the inputs into static buffers, runs once eagerly (TensorRT wants one enqueue after
    a shape change before a capture) and captures; calls 3+ copy inputs in and replay."""

    def __init__(self):
        self.key = None
        self.calls = 0
        self.graph = None
        self.inputs: dict = {}
        self.outputs: dict = {}
        self.disabled = False

    def run(self, model: TrtModel, inputs: dict) -> dict:
        key = tuple((n, tuple(t.shape), t.dtype) for n, t in inputs.items())
        if key != self.key:  # a new shape: drop the old graph and its buffers
            self.key, self.calls, self.graph, self.inputs, self.outputs = key, 0, None, {}, {}
        self.calls += 1
        if self.disabled or self.calls == 1:
            return model._launch(lambda: model._enqueue(inputs))
        if self.graph is None:
            self.inputs = {n: t.clone() for n, t in inputs.items()}
            self.outputs = model._launch(lambda: model._enqueue(self.inputs))
            self._capture(model)
        else:
            for name, tensor in inputs.items():  # on the caller's stream, before the wait
                self.inputs[name].copy_(tensor)
            model._launch(lambda: _replay_on(self.graph, model._stream))
        # the static outputs are overwritten by the next replay: hand out copies
        return {n: self.outputs[n].clone() for n in model.output_names}

    def _capture(self, model: TrtModel) -> None:
        import torch

        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=model._stream):
                model._context.execute_async_v3(model._stream.cuda_stream)
        except RuntimeError as exc:  # e.g. a plugin that cannot be captured: stay eager
            log.warning("CUDA graph capture failed (%s); running this engine eagerly", exc)
            self.disabled = True
            return
        self.graph = graph


def _replay_on(graph, stream) -> None:
    import torch

    with torch.cuda.stream(stream):  # CUDAGraph.replay launches on the current stream
        graph.replay()


def _numpy_dtype(trt, trt_dtype):
    import numpy as np

    try:
        return np.dtype(trt.nptype(trt_dtype)).type
    except (TypeError, KeyError):  # bf16 / fp8: no numpy equivalent
        return None


def _torch_dtype(trt, trt_dtype):
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
             "INT8": torch.int8, "UINT8": torch.uint8, "INT32": torch.int32,
             "INT64": torch.int64, "BOOL": torch.bool}
    for name, dtype in table.items():
        if getattr(trt.DataType, name, None) == trt_dtype:
            return dtype
    raise TypeError(f"TensorRT tensor dtype {trt_dtype} has no torch equivalent here")
