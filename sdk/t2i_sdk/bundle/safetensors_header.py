"""The header of a ``.safetensors`` file, read and checked in pure Python.

A file whose sha256 matches a (rehashed) manifest can still be corrupt; checking its header
before a loader sees it turns a Rust or torch traceback into one line naming the file.
Layout: 8 bytes little-endian header length N, N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {...}}``, then the tensor data.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from t2i_sdk.errors import BundleError

MAX_HEADER_BYTES = 100 << 20  # the safetensors library refuses larger headers too
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "U16": 2, "I16": 2,
                "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8,
                "F64": 8}


def read_safetensors_header(path: str | Path) -> dict:
    """The tensor table of ``path`` (``{name: {"dtype", "shape", "data_offsets"}}``).

    Raises ``BundleError`` naming ``path`` when the header is truncated, not JSON, or
    describes tensors that do not fit the file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise BundleError(f"{path}: corrupt safetensors file (shorter than its header)")
        n = int.from_bytes(head, "little")
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise BundleError(f"{path}: corrupt safetensors header (claims {n} bytes, "
                              f"the file has {size})")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleError(f"{path}: corrupt safetensors header (not UTF-8 JSON)") from None
    if not isinstance(header, dict):
        raise BundleError(f"{path}: corrupt safetensors header (not a JSON object)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    data_bytes = size - 8 - n
    for name, info in tensors.items():
        problem = _tensor_problem(info, data_bytes)
        if problem:
            raise BundleError(f"{path}: corrupt safetensors header: tensor {name[:60]!r} "
                              f"{problem}")
    if not _tiles(sorted(tuple(t["data_offsets"]) for t in tensors.values()), data_bytes):
        raise BundleError(f"{path}: corrupt safetensors header: tensors do not tile the data "
                          f"(gaps or overlaps)")
    return tensors


def _tiles(spans: list[tuple[int, int]], data_bytes: int) -> bool:
    """The safetensors rule: sorted spans start at 0, follow each other, end at the data end."""
    end = 0
    for begin, stop in spans:
        if begin != end:
            return False
        end = stop
    return end == data_bytes


def _tensor_problem(info, data_bytes: int) -> str | None:
    if not isinstance(info, dict):
        return "is not described by an object"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        return "has no dtype"
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        return "has a bad shape"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        return "has bad data_offsets"
    begin, end = offsets
    if not begin <= end <= data_bytes:
        return f"lies outside the file (bytes {begin}-{end} of {data_bytes})"
    # dtypes newer than this table (sub-byte floats, ...) are left to the loader
    if dtype in _DTYPE_BYTES and end - begin != math.prod(shape) * _DTYPE_BYTES[dtype]:
        return "has a size that does not match its shape and dtype"
    return None


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
