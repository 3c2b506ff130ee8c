"""One ONNX graph in an onnxruntime session: provider choice, thread settings, numpy in/out,
and IOBinding so inputs that do not change between calls stay on the device.

``OrtModel.to_device`` copies inputs to the session's device once (CUDA memory under the CUDA
and TensorRT EPs; on the CPU EP an ``OrtValue`` over the host array, no copy);
``run_bound`` then takes those ``OrtValue``s plus fresh numpy inputs, so a sampling loop
re-sends only what changes each step. ``place_constants`` / ``run_to_host`` do the same for
any graph runner, falling back to plain numpy ``run`` for TensorRT's ``TrtModel``.

Imported only by the onnxruntime engines (never by a package ``__init__``), so importing
onnxruntime at the top is fine here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from t2i_engines import threads as cpu_threads

DEVICES = ("auto", "cpu", "cuda", "tensorrt")

_ORT_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


class OrtModel:
    """An ``onnxruntime.InferenceSession`` plus the names and dtypes of its inputs/outputs.

    Use :meth:`load`. ``run`` is plain numpy in / numpy out on every provider; ``to_device``
    places inputs on the session's device once, and ``run_bound`` takes such ``OrtValue``s
    and keeps its outputs there, for loops and for chaining graphs.
    """

    def __init__(self, session: ort.InferenceSession, path: Path, device: str):
        self.session = session
        self.path = path
        self.device = device  # "cpu" or "cuda:<i>": where outputs of run_bound live
        self.providers = session.get_providers()
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.input_dtypes = {i.name: _ORT_TO_NUMPY.get(i.type) for i in session.get_inputs()}

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto",
             threads: int | None = None) -> OrtModel:
        """Open the graph at ``path`` (its ``.data`` file alongside, if any).

        ``device``: "auto" (TensorRT EP > CUDA EP > CPU EP, whichever this onnxruntime build
        has) | "cpu" | "cuda[:i]" | "tensorrt[:i]". ``threads``: intra-op CPU threads (default
        the process's ``t2i_engines.threads`` setting, which also says whether they spin). Raises ValueError naming ``path`` when the
        file is missing or is not a loadable ONNX graph, or when the device is unavailable.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no ONNX graph at {path} (file missing)")
        providers, device_name = _providers(device)
        options = ort.SessionOptions()
        settings = cpu_threads.current()
        options.intra_op_num_threads = threads or settings.threads
        # Spinning workers starve a shared machine (t2i_engines.threads); sleep unless asked.
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if settings.spin else "0")
        options.inter_op_num_threads = 1  # graphs here are sequential chains of ops
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: provider fallback notices are noise
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf types
            raise ValueError(f"{path} is not a loadable ONNX graph: {exc}") from exc
        return cls(session, path, device_name)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on numpy inputs; returns every output by name as a host numpy array.

        Inputs are cast to the graph's declared dtype (e.g. int32 token ids -> int64).
        """
        outputs = self.session.run(self.output_names, self._host_feeds(feeds))
        return dict(zip(self.output_names, outputs))

    def to_device(self, feeds: dict[str, np.ndarray]) -> dict[str, ort.OrtValue]:
        """Cast numpy inputs (any subset of the graph's) to its dtypes and place them on
        ``self.device`` once; pass the results to :meth:`run_bound` on every later call.

        On the CPU EP the ``OrtValue`` wraps the cast array without copying (the array is
        the caller's own when already of the right dtype), so do not modify it afterwards,
        and a ``.numpy()`` view of it is valid only while the ``OrtValue`` lives.
        """
        device_type, device_id = _split_device(self.device)
        return {name: ort.OrtValue.ortvalue_from_numpy(host, device_type, device_id)
                for name, host in self._host_feeds(feeds, complete=False).items()}

    def run_bound(self, feeds: dict[str, np.ndarray | ort.OrtValue]) -> dict[str, ort.OrtValue]:
        """Run with IOBinding: numpy inputs go through :meth:`to_device`, ``OrtValue`` inputs
        are used in place, and outputs stay on ``self.device`` (call ``.numpy()`` to fetch)."""
        self._check_names(feeds)
        host = {name: v for name, v in feeds.items() if not isinstance(v, ort.OrtValue)}
        # Held until the run ends: on the CPU EP these OrtValues borrow the cast host arrays,
        # and older onnxruntime bindings keep no reference to them.
        values = {**feeds, **self.to_device(host)}
        binding = self.session.io_binding()
        for name, value in values.items():
            binding.bind_ortvalue_input(name, value)
        device_type, device_id = _split_device(self.device)
        for name in self.output_names:
            binding.bind_output(name, device_type, device_id)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.get_outputs()))

    def _check_names(self, names, *, complete: bool = True) -> None:
        unknown = set(names) - set(self.input_names)
        missing = set(self.input_names) - set(names) if complete else set()
        if unknown or missing:
            raise ValueError(f"{self.path.name}: expected inputs {self.input_names}, "
                             f"got {sorted(names)}")

    def _host_feeds(self, feeds: dict[str, np.ndarray], *,
                    complete: bool = True) -> dict[str, np.ndarray]:
        self._check_names(feeds, complete=complete)
        return {name: np.ascontiguousarray(value, dtype=self.input_dtypes[name])
                for name, value in feeds.items()}


def place_constants(graph, feeds: dict[str, np.ndarray]) -> dict:
    """Inputs that stay the same for a whole sampling loop, placed once: ``OrtValue``s on the
    device for an :class:`OrtModel`; unchanged numpy for runners without IOBinding (TensorRT's
    ``TrtModel``, whose ``run`` takes numpy)."""
    return graph.to_device(feeds) if isinstance(graph, OrtModel) else feeds


def run_to_host(graph, feeds: dict) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``place_constants`` results plus numpy per-step inputs; every output
    comes back as host numpy (one device-to-host copy per output under CUDA)."""
    if not isinstance(graph, OrtModel):
        return graph.run(feeds)
    return {name: value.numpy() for name, value in graph.run_bound(feeds).items()}


def _providers(device: str) -> tuple[list, str]:
    """(providers list for InferenceSession, device name where bound outputs live)."""
    kind, _, index = device.partition(":")
    if kind not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    device_id = int(index) if index else 0
    available = ort.get_available_providers()
    cpu = "CPUExecutionProvider"
    cuda = ("CUDAExecutionProvider", {"device_id": device_id})
    tensorrt = ("TensorrtExecutionProvider", {"device_id": device_id})
    if kind == "cpu":
        return [cpu], "cpu"
    if kind == "auto":
        chosen = [p for p in (tensorrt, cuda) if p[0] in available]
        return [*chosen, cpu], (f"cuda:{device_id}" if chosen else "cpu")
    wanted = [tensorrt, cuda] if kind == "tensorrt" else [cuda]
    if wanted[0][0] not in available:
        raise ValueError(f"device {device!r} needs {wanted[0][0]}, which this onnxruntime "
                         f"build lacks (available: {', '.join(available)})")
    return [p for p in wanted if p[0] in available] + [cpu], f"cuda:{device_id}"


def _split_device(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    return kind, int(index) if index else 0
