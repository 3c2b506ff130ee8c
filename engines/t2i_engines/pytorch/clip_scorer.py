"""CLIP image and text embeddings behind a small class: the ranker's scorer.

Works with any local ``CLIPModel`` checkpoint (``openai/clip-vit-*``, the tiny random CLIP in
``tiny/clip_model.py``). Weights load from safetensors only.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_engines.errors import ModelFilesError

from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL.Image import Image

DEFAULT_BATCH_SIZE = 32  # images or texts per forward pass; bounds peak memory, not results


class ClipScorerEngine:
    """One CLIP model with its tokenizer and image processor on one device. Use :meth:`load`."""

    def __init__(self, model, tokenizer, image_processor, device: str,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.device = device
        self.batch_size = batch_size
        self.dim = int(model.config.projection_dim)  # d, the shared embedding width
        # Texts longer than this are truncated; position embeddings set the hard limit.
        self.max_text_tokens = min(int(tokenizer.model_max_length),
                                   int(model.config.text_config.max_position_embeddings))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", dtype: str = "auto",
             batch_size: int = DEFAULT_BATCH_SIZE) -> ClipScorerEngine:
        """Load a local CLIP directory (config, safetensors weights, tokenizer, image processor).

        ``device``: "auto" | "cpu" | "cuda[:i]" | "mps"; ``dtype``: "auto" | "float32" |
        "float16" | "bfloat16". Never runs remote code.
        """
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelFilesError(f"no CLIP checkpoint at {path} (config.json missing)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = resolve_device(device)
        with loading_progress(False):
            model = CLIPModel.from_pretrained(path, dtype=resolve_dtype(dtype, device),
                                              local_files_only=True, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            # backend left to transformers: torchvision when installed, else PIL.
            image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return cls(model.to(device).eval(), tokenizer, image_processor, device, batch_size)

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised; row i embeds ``images[i]`` (any size/mode)."""
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [im.convert("RGB") for im in images[start:start + self.batch_size]]
                pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
                pixels = pixels.to(self.device, dtype=self.model.dtype)
                out = self.model.get_image_features(pixel_values=pixels)
                chunks.append(_pooled(out))
        return self._normalised(chunks)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(m, d) float32, rows L2-normalised; texts past ``max_text_tokens`` are truncated."""
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                     truncation=True, max_length=self.max_text_tokens,
                                     return_tensors="pt")
                out = self.model.get_text_features(
                    input_ids=enc["input_ids"].to(self.device),
                    attention_mask=enc["attention_mask"].to(self.device))
                chunks.append(_pooled(out))
        return self._normalised(chunks)

    def _normalised(self, chunks: list[torch.Tensor]) -> np.ndarray:
        import numpy as np
        import torch

        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        feats = torch.cat(chunks).float()  # normalise in float32: fp16 norms lose precision
        feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)


def _pooled(features) -> torch.Tensor:
    """Projected embeddings: a tensor in transformers 4, ``.pooler_output`` in transformers 5."""
    return features if hasattr(features, "shape") else features.pooler_output
