"""CLIP image and text embeddings from the ONNX graphs of ``t2i-export onnx``: the scorer.

Same interface and the same preprocessing as ``t2i_engines.pytorch.clip_scorer``, without
torch or transformers: token ids from the ``tokenizers`` library over the tokenizer files
copied next to the graphs (``ClipTokenizer``), pixel values from ``ClipImageProcessor``
(numpy + PIL, transformers' PIL path re-done), so ids equal the torch engine's, and pixels do
too where torchvision is absent (transformers then takes the PIL path; torchvision's bicubic
resize differs slightly); the two towers run in onnxruntime. Graph layout: see ``onnx_export.json`` (written by ``t2i_export.onnx.clip_export``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from t2i_engines.clip_image_processing import ClipImageProcessor
from t2i_engines.clip_tokenizer import ClipTokenizer
from t2i_engines.onnxruntime.export_format import DTYPES, MANIFEST_NAME
from t2i_engines.onnxruntime.session import OrtModel

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_BATCH_SIZE = 32  # images or texts per run; bounds peak memory, not results


class OrtClipScorerEngine:
    """Two onnxruntime sessions (text, vision) plus tokenizer and image processor. Use
    :meth:`load`."""

    def __init__(self, text_model: OrtModel, vision_model: OrtModel, tokenizer,
                 image_processor, *, dim: int, max_position_embeddings: int,
                 batch_size: int = DEFAULT_BATCH_SIZE, dtype: str = "fp32"):
        self.text_model = text_model
        self.vision_model = vision_model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.device = vision_model.device  # "cpu" or "cuda:<i>"
        self.batch_size = batch_size
        self.dtype = dtype  # the exported graphs' precision: "fp32" | "fp16" | "int8"
        self.dim = dim  # d, the shared embedding width
        # Texts longer than this are truncated; position embeddings set the hard limit.
        self.max_text_tokens = min(int(tokenizer.model_max_length), max_position_embeddings)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", dtype: str = "auto",
             batch_size: int = DEFAULT_BATCH_SIZE, runtime: str = "onnxruntime") -> OrtClipScorerEngine:
        """Load an exported CLIP folder (``onnx_export.json``, two graphs, tokenizer and image
        processor files).

        ``device``: "auto" | "cpu" | "cuda[:i]" | "tensorrt[:i]" (see ``OrtModel.load``).
        ``dtype``: accepted for interface parity ("auto" | "float32" | "float16" | "bfloat16" |
        "int8"; other names raise ValueError) but the precision was fixed at export time and is
        reported as ``self.dtype`` ("fp32" | "fp16" | "int8"): a bundle's entry says float32
        for int8 graphs, whose inputs and outputs are float32. ``runtime="tensorrt"`` runs
        the ``.plan`` engines built beside the graphs.
        """
        from t2i_engines.onnxruntime.graph_runner import load_graph

        path = Path(path)
        manifest = _read_manifest(path)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        graphs = manifest["graphs"]
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        text = load_graph(path / graphs["text_model"]["path"], device=device, runtime=runtime)
        vision = load_graph(path / graphs["vision_model"]["path"], device=device, runtime=runtime)
        tokenizer = ClipTokenizer(path)
        image_processor = ClipImageProcessor.from_folder(path)
        model = manifest["model"]
        return cls(text, vision, tokenizer, image_processor, dim=int(model["projection_dim"]),
                   max_position_embeddings=int(model["max_position_embeddings"]),
                   batch_size=batch_size, dtype=graphs["vision_model"]["dtype"])

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised; row i embeds ``images[i]`` (any size/mode)."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start:start + self.batch_size]]
            pixels = self.image_processor(batch)
            out = self.vision_model.run({"pixel_values": pixels.astype(np.float32)})
            chunks.append(out["image_embeds"])
        return self._normalised(chunks)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(m, d) float32, rows L2-normalised; texts past ``max_text_tokens`` are truncated."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                 truncation=True, max_length=self.max_text_tokens,
                                 return_tensors="np")
            out = self.text_model.run({"input_ids": enc["input_ids"].astype(np.int64),
                                       "attention_mask": enc["attention_mask"].astype(np.int64)})
            chunks.append(out["text_embeds"])
        return self._normalised(chunks)

    def _normalised(self, chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        feats = np.concatenate(chunks).astype(np.float32)
        # Same epsilon as torch.nn.functional.normalize: an all-zero row stays zero.
        norms = np.maximum(np.linalg.norm(feats, axis=-1, keepdims=True), 1e-12)
        return (feats / norms).astype(np.float32, copy=False)


def _read_manifest(path: Path) -> dict:
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ValueError(f"no exported CLIP at {path} ({MANIFEST_NAME} missing)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if set(manifest.get("graphs", {})) != {"text_model", "vision_model"}:
        raise ValueError(f"{manifest_path}: expected graphs text_model and vision_model")
    return manifest

