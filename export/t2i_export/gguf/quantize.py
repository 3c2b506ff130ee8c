"""Output types and the per-tensor storage type they imply.

f32, f16, q8_0 and q4_0 are written here, tensor by tensor, with ``gguf.quants`` (no llama.cpp
needed). Like llama.cpp's converter, 1-D tensors and norms stay f32, and a matrix whose rows do
not split into whole quantisation blocks falls back to f16.

The K-quants (q4_k, q5_k, q6_k) go through llama.cpp's own quantizer instead (see
``llama_quantize``; needs llama-cpp-python, the ``llama`` extra): gguf-py only dequantises them,
and llama.cpp picks the per-tensor mix (Q4_K_M keeps some matrices in Q6_K).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gguf
import numpy as np

logger = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType
F = gguf.LlamaFileType

# Written in Python: name -> (file type recorded in general.file_type, storage type of the
# quantisable matrices).
PYTHON_TYPES: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f32": (F.ALL_F32, Q.F32),
    "f16": (F.MOSTLY_F16, Q.F16),
    "q8_0": (F.MOSTLY_Q8_0, Q.Q8_0),
    "q4_0": (F.MOSTLY_Q4_0, Q.Q4_0),
}
# Written by llama.cpp's quantizer: name -> llama_ftype (gguf's LlamaFileType has llama.h's values).
K_QUANT_TYPES: dict[str, gguf.LlamaFileType] = {
    "q4_k": F.MOSTLY_Q4_K_M,
    "q5_k": F.MOSTLY_Q5_K_M,
    "q6_k": F.MOSTLY_Q6_K,
}
OUT_TYPES: tuple[str, ...] = (*PYTHON_TYPES, *K_QUANT_TYPES)


@dataclass(frozen=True)
class TensorType:
    """How one tensor is stored: ``qtype``, and ``note`` when it differs from the request."""

    qtype: gguf.GGMLQuantizationType
    note: str | None = None


def resolve_out_type(out_type: str) -> tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]:
    """``(file_type, qtype)`` for a type written in Python. ValueError for an unknown name, a
    K-quant (llama.cpp's quantizer writes those) or a type this gguf-py cannot quantise."""
    if out_type in K_QUANT_TYPES:
        raise ValueError(f"{out_type} is written by llama.cpp's quantizer, not tensor by tensor; "
                         f"convert_to_gguf routes it there")
    if out_type not in PYTHON_TYPES:
        raise ValueError(f"unknown GGUF output type {out_type!r}; expected one of "
                         f"{', '.join(OUT_TYPES)}")
    file_type, qtype = PYTHON_TYPES[out_type]
    if not _can_quantize(qtype):  # older gguf-py releases lack some quantisers
        raise ValueError(f"gguf-py {_gguf_version()} cannot quantise {out_type} in Python; "
                         f"upgrade it: pip install -U gguf")
    return file_type, qtype


def tensor_type(gguf_name: str, shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> TensorType:
    """The storage type of one tensor (numpy ``shape``, rows last) under the requested ``qtype``."""
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return TensorType(Q.F32)  # llama.cpp's norm / bias / rope-factor kernels want f32
    if qtype in (Q.F32, Q.F16):
        return TensorType(qtype)
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    if shape[-1] % block_size:
        return TensorType(Q.F16, f"{gguf_name}: row size {shape[-1]} is not a multiple of the "
                                 f"{qtype.name} block size {block_size}; stored as F16")
    return TensorType(qtype)


def stored_nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    """Bytes a tensor of numpy ``shape`` takes in the file as ``qtype``."""
    return int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype)))


def encode(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """``array`` (float) as the bytes / halves / floats GGUF stores for ``qtype``."""
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def _can_quantize(qtype: gguf.GGMLQuantizationType) -> bool:
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    try:
        gguf.quants.quantize(np.zeros((1, block_size), dtype=np.float32), qtype)
    except NotImplementedError:
        return False
    return True


def _gguf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gguf")
    except PackageNotFoundError:
        return "(unknown version)"
