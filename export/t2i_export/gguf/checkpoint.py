"""Read a transformers checkpoint's safetensors weights one tensor at a time.

Handles a single ``model.safetensors`` and sharded checkpoints (``model.safetensors.index.json``).
Tensors are loaded lazily so a conversion holds one weight matrix in memory at a time.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from t2i_export.gguf.json_file import read_json_object


class SafetensorsCheckpoint:
    """Tensor names, shapes and float32 values of one checkpoint directory (or adapter file)."""

    def __init__(self, files_by_name: dict[str, Path]):
        self.files_by_name = files_by_name

    @classmethod
    def open_model(cls, model_dir: Path) -> SafetensorsCheckpoint:
        """The weights of ``model_dir``; ValueError when there are no safetensors weights."""
        model_dir = Path(model_dir)
        index = model_dir / "model.safetensors.index.json"
        if index.is_file():
            weight_map = read_json_object(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise ValueError(f"{index}: no \"weight_map\" object")
            return cls({name: model_dir / file for name, file in weight_map.items()})
        single = model_dir / "model.safetensors"
        if single.is_file():
            return cls.open_file(single)
        raise ValueError(f"no safetensors weights in {model_dir} (model.safetensors or "
                         "model.safetensors.index.json); .bin checkpoints are not supported")

    @classmethod
    def open_file(cls, path: Path) -> SafetensorsCheckpoint:
        with _safe_open(path) as f:
            return cls({name: Path(path) for name in f.keys()})

    @property
    def names(self) -> list[str]:
        return list(self.files_by_name)

    def shape(self, name: str) -> tuple[int, ...]:
        with _safe_open(self.files_by_name[name]) as f:
            return tuple(f.get_slice(name).get_shape())

    def load(self, name: str) -> np.ndarray:
        """The tensor as float32 numpy (bf16 / f16 checkpoints are widened, exactly)."""
        import torch

        with _safe_open(self.files_by_name[name]) as f:
            return f.get_tensor(name).to(torch.float32).numpy()


@contextmanager
def _safe_open(path: Path):
    """safetensors' ``safe_open``; ValueError naming ``path`` for a missing or damaged file."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, FileNotFoundError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    with handle as f:
        yield f
