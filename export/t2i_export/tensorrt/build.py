"""Build a TensorRT plan from an exported ONNX graph, with its ``<plan>.json`` metadata.

A plan only runs under the TensorRT version and on the GPU architecture that built it, so the
metadata records both (plus fp16, the optimization profile, the source ONNX hash and the IO
tensors) and ``TrtModel.load`` checks them before deserializing. Builds take minutes for an SD
UNet; the timing cache (kernel timings) makes rebuilds on the same machine much faster.

``tensorrt`` / ``torch`` / ``onnx`` are imported inside functions.
"""
from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_engines.tensorrt.runtime import (METADATA_SCHEMA, REBUILD_CMD, TensorRTUnavailable,
                                          metadata_path, require_tensorrt)

from t2i_sdk.bundle.atomic import atomic_write_bytes, atomic_write_text
from t2i_sdk.bundle.hashing import sha256_file

__all__ = ["EngineBuildError", "Profile", "TensorRTUnavailable", "build_engine",
           "default_profiles", "engine_metadata"]

# CLIP's context: prompts are padded/truncated to 77 tokens.
TEXT_TOKENS = (1, 77, 77)
# A regional drafter UNet's context (t2i_engines.regional_prompts): 77 tokens per block, the
# background plus up to MAX_GLIGEN_OBJECTS phrases; tuned for two objects.
CONTEXT_TOKENS = (77, 3 * 77, (1 + MAX_GLIGEN_OBJECTS) * 77)
# Progress callback: (phase name, steps done, steps in phase), TensorRT's top-level phases only.
ProgressFn = Callable[[str, int, int], None]


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX graph or build an engine from it."""


@dataclass
class Profile:
    """One optimization profile: per input name, the smallest / tuned-for / largest shape."""

    min: dict[str, tuple] = field(default_factory=dict)
    opt: dict[str, tuple] = field(default_factory=dict)
    max: dict[str, tuple] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {k: {name: list(shape) for name, shape in getattr(self, k).items()}
                for k in ("min", "opt", "max")}

    @classmethod
    def from_json(cls, data: dict) -> Profile:
        return cls(**{k: {name: tuple(shape) for name, shape in data.get(k, {}).items()}
                      for k in ("min", "opt", "max")})

    def shapes(self, name: str) -> tuple[tuple, tuple, tuple]:
        """(min, opt, max) of one input; KeyError when the profile does not cover it."""
        return self.min[name], self.opt[name], self.max[name]


def default_profiles(onnx_path: Path, *, batch: tuple[int, int, int] = (1, 4, 8),
                     resolution: tuple[int, int, int] = (256, 512, 768), vae_scale: int = 8,
                     dims: dict[str, tuple[int, int, int]] | None = None) -> Profile:
    """A profile for every graph input, from its symbolic dims (min, opt, max per symbol).

    Fixed dims keep their size. Symbols containing ``batch`` take ``batch``; ``height`` /
    ``width`` take ``resolution`` (pixels) - as is for pixel-space tensors (a fixed channel
    axis of 3, or "pixel"/"image" in the symbol), divided by ``vae_scale`` for latents ("latent"
    in the symbol, or any other channel count); ``context`` takes 77..77·31 (a regional
    UNet's context); ``token`` / ``seq`` take 1..77 (CLIP). ``dims``
    (exact symbol -> (min, opt, max)) overrides or adds to these; an unknown or unnamed
    dynamic dim raises ValueError naming it.
    """
    import onnx

    onnx_path = Path(onnx_path)
    for name, triple in (("batch", batch), ("resolution", resolution)):
        if len(triple) != 3 or not 0 < triple[0] <= triple[1] <= triple[2]:
            raise ValueError(f"{name} must be (min, opt, max) with 0 < min <= opt <= max, "
                             f"got {triple}")
    model = onnx.load(str(onnx_path), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    profile = Profile()
    for tensor in model.graph.input:
        if tensor.name in weights:  # old exporters list initializers as inputs too
            continue
        sizes = [_dim_range(onnx_path, tensor, axis, batch, resolution, vae_scale, dims or {})
                 for axis in range(len(tensor.type.tensor_type.shape.dim))]
        for i, key in enumerate(("min", "opt", "max")):
            getattr(profile, key)[tensor.name] = tuple(size[i] for size in sizes)
    return profile


def _dim_range(onnx_path, tensor, axis, batch, resolution, vae_scale, dims) -> tuple:
    shape = tensor.type.tensor_type.shape.dim
    dim = shape[axis]
    if dim.HasField("dim_value"):
        return (dim.dim_value,) * 3
    symbol = dim.dim_param if dim.HasField("dim_param") else ""
    lowered = symbol.lower()
    if symbol in dims:
        return tuple(dims[symbol])
    if "batch" in lowered:
        return tuple(batch)
    if "height" in lowered or "width" in lowered:
        channels = shape[1].dim_value if len(shape) == 4 and shape[1].HasField("dim_value") else 0
        pixels = "pixel" in lowered or "image" in lowered or (
            "latent" not in lowered and channels == 3)
        scale = 1 if pixels else vae_scale
        return tuple(max(1, r // scale) for r in resolution)
    if "context" in lowered:
        return CONTEXT_TOKENS
    if "token" in lowered or "seq" in lowered:
        return TEXT_TOKENS
    raise ValueError(f"{onnx_path.name}: input {tensor.name!r} axis {axis} is dynamic "
                     f"({symbol or 'unnamed'}) and has no default range; pass "
                     f"dims={{{symbol or '<symbol>'!r}: (min, opt, max)}} or a Profile")


def engine_metadata(*, trt_version: str, gpu_name: str, compute_capability: tuple[int, int],
                    fp16: bool, profile: Profile | None, onnx_path: Path,
                    inputs: list[dict], outputs: list[dict], workspace_gb: float,
                    rebuild_cmd: str = REBUILD_CMD, build_seconds: float | None = None,
                    strongly_typed: bool = False) -> dict:
    """The ``<plan>.json`` dict. ``inputs`` / ``outputs``: ``{"name", "dtype", "shape"}`` with
    -1 for dynamic dims; ``strongly_typed``: precision came from the graph (TensorRT 11), not
    a builder flag. Pure: no TensorRT needed (the build fills it from the network)."""
    onnx_path = Path(onnx_path)
    data_file = onnx_path.with_name(onnx_path.name + ".data")  # graph.py's external data
    return {
        "schema": METADATA_SCHEMA,
        "tensorrt_version": trt_version,
        "gpu_name": gpu_name,
        "compute_capability": list(compute_capability),
        "fp16": fp16,
        "strongly_typed": strongly_typed,
        "workspace_gb": workspace_gb,
        "profile": profile.to_json() if profile is not None else None,
        "source_onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path),
                        "data_sha256": sha256_file(data_file) if data_file.is_file() else None},
        "inputs": inputs,
        "outputs": outputs,
        "rebuild_cmd": rebuild_cmd,
        "build_seconds": build_seconds,
    }


def build_engine(onnx_path: Path, out_path: Path, *, fp16: bool = True,
                 profile: Profile | None = None, timing_cache: Path | None = None,
                 workspace_gb: float = 4.0, progress: ProgressFn | None = None,
                 rebuild_cmd: str = REBUILD_CMD) -> Path:
    """Build ``onnx_path`` into a TensorRT plan at ``out_path``; returns ``out_path``.

    Raises :class:`TensorRTUnavailable` (no ``tensorrt`` or no CUDA GPU) before writing
    anything. ``profile``: defaults to :func:`default_profiles`. ``timing_cache``: loaded if it
    exists, saved back atomically after the build. ``workspace_gb``: TensorRT's scratch memory
    limit (GiB). The plan is written atomically, then ``<plan>.json`` (see
    :func:`engine_metadata`); ``progress(phase, done, total)`` follows TensorRT's build phases.
    ``fp16`` uses the FP16 builder flag on TensorRT 10; TensorRT 11 has none (networks are
    strongly typed), so an fp32 graph is first converted to fp16 with fp32 IO.
    """
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    timing_cache = Path(timing_cache) if timing_cache is not None else None
    trt, torch = require_tensorrt()
    if not onnx_path.is_file():
        raise FileNotFoundError(f"no ONNX graph at {onnx_path}")
    profile = profile if profile is not None else default_profiles(onnx_path)
    started = time.perf_counter()

    # TensorRT 11 dropped BuilderFlag.FP16: networks are strongly typed, precision is the graph's
    strongly_typed = getattr(trt.BuilderFlag, "FP16", None) is None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _graph_to_parse(onnx_path, out_path.parent, fp16 and strongly_typed) as graph:
        if not parser.parse_from_file(str(graph)):  # reads external data beside the graph
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineBuildError(f"{onnx_path}: TensorRT could not parse the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16 and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    _add_profile(builder, config, network, profile)
    _load_timing_cache(config, timing_cache)
    monitor = _progress_monitor(trt, progress) if progress is not None else None
    if monitor is not None:  # `monitor` keeps the Python object alive through the build
        config.progress_monitor = monitor

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT failed to build an engine "
                               "(see the TensorRT log above)")
    device = torch.cuda.current_device()
    meta = engine_metadata(
        trt_version=trt.__version__, gpu_name=torch.cuda.get_device_name(device),
        compute_capability=tuple(torch.cuda.get_device_capability(device)), fp16=fp16,
        profile=profile, onnx_path=onnx_path, workspace_gb=workspace_gb,
        inputs=[_io(trt, network.get_input(i)) for i in range(network.num_inputs)],
        outputs=[_io(trt, network.get_output(i)) for i in range(network.num_outputs)],
        rebuild_cmd=rebuild_cmd, build_seconds=round(time.perf_counter() - started, 2),
        strongly_typed=strongly_typed)
    _write_plan(out_path, serialized, meta)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return out_path


def _network_flags(trt, strongly_typed: bool) -> int:
    # TensorRT 10 networks are always explicit-batch (the old flag is ignored); strong typing is
    # opt-in on 10.x and always on in 11.x, where the flag is accepted and ignored
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if strongly_typed and flag is not None else 0


@contextmanager
def _graph_to_parse(onnx_path: Path, scratch_parent: Path, make_fp16: bool) -> Iterator[Path]:
    """The graph TensorRT should parse. Without a FP16 builder flag (TensorRT 11) an fp16
    engine needs fp16 in the graph: an fp32 graph is converted (fp32 IO kept) into a scratch
    folder, removed after parsing; a graph that already holds fp16 weights is used as is."""
    if not make_fp16 or _has_fp16_weights(onnx_path):
        yield onnx_path
        return
    from t2i_export.onnx.graph import to_fp16

    with tempfile.TemporaryDirectory(dir=scratch_parent, prefix=".trt-fp16-") as scratch:
        yield to_fp16(onnx_path, Path(scratch) / onnx_path.name)


def _has_fp16_weights(onnx_path: Path) -> bool:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def _add_profile(builder, config, network, profile: Profile) -> None:
    """Register the shapes of the network's dynamic inputs; static inputs need none."""
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(d < 0 for d in network.get_input(i).shape)]
    if not dynamic:
        return
    trt_profile = builder.create_optimization_profile()
    for tensor in dynamic:
        try:
            low, opt, high = profile.shapes(tensor.name)
        except KeyError:
            raise EngineBuildError(f"the profile has no shapes for dynamic input "
                                   f"{tensor.name!r} {tuple(tensor.shape)}") from None
        trt_profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(trt_profile)


def _load_timing_cache(config, path: Path | None) -> None:
    blob = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(blob)
    # ignore_mismatch=False: a cache from another GPU/TensorRT is rejected, never misapplied;
    # then start from an empty one (the saved file is replaced after the build)
    if config.set_timing_cache(cache, ignore_mismatch=False) is False and blob:
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _write_plan(out_path: Path, serialized, meta: dict) -> None:
    """Old metadata goes first and new metadata last: a crash in between leaves a plan without
    metadata, which ``TrtModel.load`` refuses, never a plan described by stale metadata."""
    metadata_path(out_path).unlink(missing_ok=True)
    atomic_write_bytes(out_path, memoryview(serialized))
    atomic_write_text(metadata_path(out_path), json.dumps(meta, indent=2) + "\n")


def _io(trt, tensor) -> dict:
    try:
        import numpy as np

        dtype = np.dtype(trt.nptype(tensor.dtype)).name
    except (TypeError, KeyError):  # bf16 / fp8 have no numpy dtype
        dtype = str(tensor.dtype).rsplit(".", 1)[-1].lower()
    return {"name": tensor.name, "dtype": dtype, "shape": list(tensor.shape)}


def _progress_monitor(trt, progress: ProgressFn):
    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.totals: dict[str, int] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                self.totals[phase_name] = num_steps
                progress(phase_name, 0, num_steps)

        def step_complete(self, phase_name, step):
            if phase_name in self.totals:  # step: zero-based index of the finished step
                progress(phase_name, step + 1, self.totals[phase_name])
            return True  # keep building

        def phase_finish(self, phase_name):
            self.totals.pop(phase_name, None)

    return _Monitor()
