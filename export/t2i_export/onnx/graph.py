"""Shared ONNX graph steps: export a torch module, convert to fp16, optimise, quantise to int8.

Every step writes a validated ``.onnx`` file. Graphs whose weights pass
``EXTERNAL_DATA_THRESHOLD`` bytes (protobuf's 2 GB limit) keep them in one ``<name>.onnx.data``
file beside the graph, so SD-size UNets round-trip through every step.

Exporter choice: the TorchScript exporter (``dynamo=False``) at opset 17. torch 2.13 defaults to
the dynamo exporter, which goes through ``torch.export`` (data-dependent guards on spatial sizes
and text lengths are a known failure mode for diffusers UNets), has no opset-17 implementations
(it exports opset 18 and down-converts) and, on the tiny CLIP text tower, took 4.7 s against
0.7 s for the same graph. The TorchScript tracer takes plain ``dynamic_axes`` and is the path
the usual SD-to-ONNX toolchains (optimum, the TensorRT demos) rely on.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import torch

DEFAULT_OPSET = 17
# Protobuf cannot serialise a message of 2 GiB or more; keep a margin for the graph itself.
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26  # bytes of tensor data
EXTERNAL_DATA_SUFFIX = ".data"  # model.onnx -> model.onnx.data
# MatMuls hold nearly all transformer weights, and MatMulInteger also has a CUDA kernel;
# ConvInteger is CPU-only and quantising convolutions (patch embeddings) costs accuracy.
INT8_OP_TYPES = ("MatMul", "Attention")
# Static (calibrated) QDQ int8 of the UNet: convolutions and the linear layers (MatMul with a
# weight). MatMuls of two activations (attention scores, attention x values) stay float: see
# ``quantize_int8_static``.
STATIC_INT8_OP_TYPES = ("Conv", "MatMul")


def export_onnx(module: torch.nn.Module, args: tuple, path: Path, *, input_names: list[str],
                output_names: list[str], dynamic_axes: dict,
                opset: int = DEFAULT_OPSET) -> Path:
    """Trace ``module(*args)`` to an fp32 ONNX graph at ``path``; returns ``path``.

    ``dynamic_axes``: ``{tensor_name: {axis: "symbol"}}`` for inputs and outputs (e.g. batch).
    Weights go to ``<path>.data`` when they pass ``EXTERNAL_DATA_THRESHOLD``. The result is
    checked with ``onnx.checker`` (path-based, so external data is checked too).
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    # Trace into a scratch dir: for > 2 GB graphs the exporter spills one file per tensor there,
    # which we then gather into a single data file next to the final graph.
    with _scratch_dir(path.parent) as scratch, torch.inference_mode(False), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow / dynamo
        traced = scratch / "model.onnx"
        torch.onnx.export(module, args, str(traced), input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
        save_model(onnx.load(str(traced)), path)
    return path


def export_converted(module: torch.nn.Module, args: tuple, final: Path, steps: list,
                     *, input_names: list[str], output_names: list[str], dynamic_axes: dict,
                     opset: int = DEFAULT_OPSET) -> Path:
    """Trace to fp32 (see :func:`export_onnx`), then run each ``step(src, dst) -> dst`` in turn
    (e.g. ``optimize_graph``, ``to_fp16``); returns ``final``.

    The last step writes ``final`` itself (an external data file keeps the name the graph
    refers to); intermediates sit beside it (``fp32.onnx``, ``<step name>.onnx``) and are
    removed once the next step has read them.
    """
    final = Path(final)
    current = final.with_name("fp32.onnx") if steps else final
    export_onnx(module, args, current, input_names=input_names, output_names=output_names,
                dynamic_axes=dynamic_axes, opset=opset)
    for i, step in enumerate(steps):
        dst = final if i == len(steps) - 1 else final.with_name(f"{step.__name__}.onnx")
        step(current, dst)
        for path in model_files(current):
            path.unlink()
        current = dst
    return final


def to_fp16(src: Path, dst: Path) -> Path:
    """Convert weights and activations of ``src`` to float16, keeping fp32 inputs/outputs.

    Run it after :func:`optimize_graph`: optimising an fp16 graph on the CPU provider bakes in
    the casts that provider needs. Returns ``dst``.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    src, dst = Path(src), Path(dst)
    # Shape inference through the in-memory proto fails past 2 GB; the path-based one works.
    # Its output sits beside ``src`` so relative external-data locations still resolve.
    inferred = src.with_name(f".{src.stem}-{uuid.uuid4().hex[:8]}.inferred.onnx")
    try:
        onnx.shape_inference.infer_shapes_path(str(src), str(inferred))
        model = onnx.load(str(inferred))
    finally:
        inferred.unlink(missing_ok=True)
    model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    # The converter appends the fp32->fp16 input casts at the end of the node list; onnxruntime
    # tolerates that, the ONNX checker (rightly) does not.
    OnnxModel.graph_topological_sort(model.graph)
    return save_model(model, dst)


def optimize_graph(src: Path, dst: Path) -> Path:
    """onnxruntime's offline graph optimisation of ``src`` into ``dst``; returns ``dst``.

    Basic level only (constant folding, redundant-node removal): those rewrites are
    provider-independent, whereas the extended level fuses into CPU-specific contrib ops that
    the CUDA / TensorRT providers may not run.
    """
    import onnxruntime as ort

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    _remove_model(dst)
    if _file_bytes(src) >= EXTERNAL_DATA_THRESHOLD:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name",
            dst.name + EXTERNAL_DATA_SUFFIX)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    _check(dst)
    return dst


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of ``INT8_OP_TYPES`` (int8 weights, activations quantised at
    run time); returns ``dst``. Best on CPU; meant for the fp32 graph, not an fp16 one.

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only) onnxruntime's
    uint8 x int8 kernels saturate 16-bit sums, which cost a one-layer test 12-28 % relative error
    on such a host; 7-bit weights cannot saturate (onnxruntime's quantization docs)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_model(dst)
    with _without_preprocess_hint():
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, reduce_range=True,
                         op_types_to_quantize=list(INT8_OP_TYPES),
                         use_external_data_format=_file_bytes(src) >= EXTERNAL_DATA_THRESHOLD)
    _make_readable(dst)
    _check(dst)
    return dst


def quantize_int8_static(src: Path, dst: Path, feeds, *,
                         op_types: tuple[str, ...] = STATIC_INT8_OP_TYPES,
                         weight_only_matmuls: bool = True, keep_sensitive_convs: bool = True,
                         nodes_to_exclude: list[str] | None = None) -> Path:
    """Static QDQ int8 quantisation of ``src`` (an fp32 graph) into ``dst``, with activation
    ranges calibrated (min/max) on ``feeds``: a list of input dicts, or a
    ``CalibrationDataReader``. Returns ``dst``.

    uint8 activations, int8 per-channel weights in 7 bits (``reduce_range``): on this AVX2-only
    (no VNNI) host onnxruntime's u8 x s8 kernels saturate 16-bit sums with full 8-bit weights
    (see ``quantize_int8``). ``weight_only_matmuls``: quantise only MatMuls whose second input
    is a weight; the activation x activation MatMuls of attention keep fp32 (their softmax
    input and output ranges vary per head and step). onnxruntime's CPU provider fuses each
    DequantizeLinear -> Conv/MatMul -> QuantizeLinear group into QLinearConv / QLinearMatMul
    (or MatMulIntegerToFloat) at load time.

    ``keep_sensitive_convs``: leave float the convolutions :func:`sensitive_convs` names (the
    first and last, and those fed straight by a skip-connection Concat); on the shapes drafter
    they carried most of the error (UNet output relative RMS error 0.067 with every Conv
    quantised, 0.041 without the first/last, 0.018 without those and the Concat-fed ones).
    ``nodes_to_exclude``: more node names to keep float.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    from t2i_export.onnx.calibration import FeedsReader

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_model(dst)
    reader = FeedsReader(feeds) if isinstance(feeds, list) else feeds
    if isinstance(feeds, list) and not feeds:
        raise ValueError("static int8 quantisation needs at least one calibration feed")
    excluded = list(nodes_to_exclude or [])
    if keep_sensitive_convs:
        excluded += sensitive_convs(src)
    if weight_only_matmuls:  # the QDQ quantiser ignores its own MatMulConstBOnly option
        excluded += activation_matmuls(src)
    with _without_preprocess_hint():
        quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(op_types), per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                        calibrate_method=CalibrationMethod.MinMax,
                        use_external_data_format=_file_bytes(src) >= EXTERNAL_DATA_THRESHOLD)
    _make_readable(dst)
    _check(dst)
    return dst


def activation_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes of the graph at ``path`` whose second input is not a weight
    (initializer or Constant): attention's scores and its weighted sum of values."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    weights |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and node.input[1] not in weights]


def sensitive_convs(path: Path) -> list[str]:
    """Names of the Conv nodes of the graph at ``path`` that static int8 hurts most: those
    reading a graph input or writing a graph output (a UNet's / VAE's first and last
    convolution) and those whose input is a Concat (a UNet's up-block shortcut convolutions
    over [upsampled, skip] features, two tensors of very different ranges sharing one scale)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {out: node for node in graph.node for out in node.output}
    inputs, outputs = {i.name for i in graph.input}, {o.name for o in graph.output}
    names = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        producer = producers.get(node.input[0])
        if node.input[0] in inputs or node.output[0] in outputs or \
                (producer is not None and producer.op_type == "Concat"):
            names.append(node.name)
    return names


def conversion_steps(*, optimize: bool, fp16: bool, int8: bool, fp16_step=to_fp16) -> list:
    """The steps :func:`export_converted` runs after the trace, in this order: optimise, then
    ``fp16_step`` (an ``(src, dst) -> dst`` like :func:`to_fp16`), then int8, each if asked."""
    return [step for step, wanted in ((optimize_graph, optimize), (fp16_step, fp16),
                                      (quantize_int8, int8)) if wanted]


def max_abs_rel_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max |a - b|, that divided by max |b|): ``b`` is the reference (e.g. the torch output).

    Shapes must match. The relative figure is 0.0 when both are all-zero and inf when only
    ``b`` is.
    """
    import numpy as np

    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"shape mismatch: {a64.shape} vs {b64.shape}")
    if a64.size == 0:
        return 0.0, 0.0
    abs_err = float(np.max(np.abs(a64 - b64)))
    scale = float(np.max(np.abs(b64)))
    if scale == 0.0:
        return abs_err, 0.0 if abs_err == 0.0 else float("inf")
    return abs_err, abs_err / scale


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Write ``model`` to ``path`` (external data in ``<path>.data`` past the threshold), then
    run the path-based checker. Returns ``path``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_model(path)
    if tensor_bytes(model) >= EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model, str(path), save_as_external_data=True,
                        all_tensors_to_one_file=True,
                        location=path.name + EXTERNAL_DATA_SUFFIX, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    _check(path)
    return path


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of initializer and constant-node tensor data held in the proto (all subgraphs)."""
    from onnx.external_data_helper import _get_all_tensors

    return sum(len(t.raw_data) or _typed_bytes(t) for t in _get_all_tensors(model))


def model_files(path: Path) -> list[Path]:
    """The files making up the graph at ``path``: itself, plus its external data if any."""
    path = Path(path)
    data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
    return [path, data] if data.exists() else [path]


def _typed_bytes(tensor) -> int:
    # Tensors stored in typed fields (float_data, int64_data, ...) rather than raw_data; 8 bytes
    # an element is an upper bound, fine for a threshold decision.
    fields = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data",
              "string_data")
    return sum(8 * len(getattr(tensor, f)) for f in fields)


def _drop_preprocess_hint(record: logging.LogRecord) -> bool:
    # The quantisers always suggest onnxruntime's shape pre-processing pass; for dynamic int8
    # of transformer towers it changes nothing, and the static UNet figures were measured
    # without it.
    return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _without_preprocess_hint():
    root = logging.getLogger()
    root.addFilter(_drop_preprocess_hint)
    try:
        yield
    finally:
        root.removeFilter(_drop_preprocess_hint)


def _make_readable(path: Path) -> None:
    """Give the graph's files the permissions a plain new file gets (umask applied): the
    quantiser writes external data through a temp file that is private (0600)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for p in model_files(path):
        p.chmod(0o666 & ~umask)


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in model_files(path))


def _remove_model(path: Path) -> None:
    """Delete a previous graph and its external data so no stale data file survives."""
    for p in model_files(path):
        p.unlink(missing_ok=True)


def _check(path: Path) -> None:
    import onnx

    onnx.checker.check_model(str(path))


@contextmanager
def _scratch_dir(parent: Path):
    # Same filesystem as the destination: multi-GB intermediates never cross devices.
    Path(parent).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".onnx-tmp-", dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


__all__ = ["DEFAULT_OPSET", "EXTERNAL_DATA_THRESHOLD", "INT8_OP_TYPES", "export_onnx",
           "export_converted", "conversion_steps", "to_fp16", "optimize_graph", "quantize_int8",
           "quantize_int8_static", "sensitive_convs", "activation_matmuls", "STATIC_INT8_OP_TYPES",
           "max_abs_rel_error", "save_model", "tensor_bytes", "model_files"]
