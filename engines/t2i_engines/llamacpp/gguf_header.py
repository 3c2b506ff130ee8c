"""The trained context length from a GGUF file's header, without loading the model.

Pure Python (no llama.cpp, no ``gguf`` package): ``gguf.GGUFReader`` parses every field and
tensor up front (seconds for a real tokenizer's vocabulary); this reads fields only until it
has the ones it needs.
Layout (GGUF v2/v3): magic ``GGUF``, version u32, tensor count u64, field count u64, then
fields: key (u64 length + UTF-8), value type u32, value.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"GGUF"
# value type -> struct format of one scalar
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFHeaderError(ValueError):
    """Not a GGUF file, or a header cut short."""


def context_length(path: str | Path) -> int | None:
    """``<architecture>.context_length``: the context the model was trained with, or None
    when the header does not say."""
    arch_key = "general.architecture"
    seen: dict[str, object] = {}
    with open(path, "rb") as f:
        for key, value in _Reader(f).fields():
            if key == arch_key or key.endswith(".context_length"):
                seen[key] = value
            arch = seen.get(arch_key)
            if isinstance(arch, str) and f"{arch}.context_length" in seen:
                break
    arch = seen.get(arch_key)
    value = seen.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class _Reader:
    def __init__(self, f: BinaryIO):
        self.f = f
        if f.read(4) != _MAGIC:
            raise GGUFHeaderError(f"{getattr(f, 'name', 'file')} is not a GGUF file")
        raw = self._exact(4)
        # A big-endian file's version reads as a huge number little-endian.
        self.order = "<" if struct.unpack("<I", raw)[0] < 0x10000 else ">"
        version = struct.unpack(self.order + "I", raw)[0]
        if version < 2:
            raise GGUFHeaderError(f"GGUF version {version} is not supported (2 or later)")
        _tensors, self.n_fields = self._unpack("QQ")

    def fields(self):
        """(key, value) per header field, in file order; arrays come back as None."""
        for _ in range(self.n_fields):
            key = self._string()
            (kind,) = self._unpack("I")
            yield key, self._value(kind)

    def _value(self, kind: int):
        if kind in _SCALARS:
            return self._unpack(_SCALARS[kind])[0]
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            item, count = self._unpack("IQ")
            self._skip_array(item, count)
            return None
        raise GGUFHeaderError(f"unknown GGUF value type {kind}")

    def _skip_array(self, item: int, count: int) -> None:
        if item in _SCALARS:
            self.f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        elif item == _STRING:
            for _ in range(count):
                (n,) = self._unpack("Q")
                self.f.seek(n, 1)
        elif item == _ARRAY:
            for _ in range(count):
                self._skip_array(*self._unpack("IQ"))
        else:
            raise GGUFHeaderError(f"unknown GGUF array item type {item}")

    def _string(self) -> str:
        (n,) = self._unpack("Q")
        return self._exact(n).decode("utf-8", errors="replace")

    def _unpack(self, fmt: str) -> tuple:
        fmt = self.order + fmt
        return struct.unpack(fmt, self._exact(struct.calcsize(fmt)))

    def _exact(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFHeaderError(f"{getattr(self.f, 'name', 'file')}: GGUF header cut short")
        return data
