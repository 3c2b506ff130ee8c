"""Rank stage: ReFocus' hybrid re-ranker (arXiv 2510.24133, Mechanism 2).

    S = λ·CLIP(I, P) + (1 − λ)·(1/k)·Σ_i CLIP(Crop(I, box_i), P_i)

CLIP(·,·) is the cosine similarity of the scorer's L2-normalised embeddings, in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from t2i_sdk.layout import Layout

if TYPE_CHECKING:
    from PIL.Image import Image

    from t2i_sdk.stages.protocols import Scorer


@dataclass(frozen=True)
class CandidateScore:
    """Scores of one image against the user's prompt and its layout."""

    scene: float  # CLIP(image, prompt), cosine in [-1, 1]
    objects: tuple[float, ...]  # CLIP(crop_i, phrase_i) per layout object
    total: float  # λ·scene + (1−λ)·mean(objects); equals scene for an empty layout

    def to_dict(self) -> dict:
        return {"scene": round(self.scene, 5), "objects": [round(v, 5) for v in self.objects],
                "total": round(self.total, 5)}


def crop_box(image: "Image", box) -> "Image":
    """Crop a relative (x0, y0, x1, y1) box to pixels; never empty (at least 1×1 px)."""
    w, h = image.size
    x0, y0 = int(box[0] * w), int(box[1] * h)
    x1, y1 = max(x0 + 1, round(box[2] * w)), max(y0 + 1, round(box[3] * h))
    return image.crop((x0, y0, min(x1, w), min(y1, h)))


class HybridRanker:
    """Scores images with a :class:`Scorer`; text embeddings are cached per ranker."""

    def __init__(self, scorer: "Scorer", lam: float = 0.5):
        self.scorer = scorer
        self.lam = lam
        self._text_cache: dict[str, np.ndarray] = {}

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            for text, row in zip(missing, self.scorer.embed_texts(missing)):
                self._text_cache[text] = row
        return np.stack([self._text_cache[t] for t in texts])

    def score(self, images: Sequence["Image"], prompt: str, layout: Layout) -> list[CandidateScore]:
        """One :class:`CandidateScore` per image; one scorer call for all images and crops."""
        if not images:
            return []
        objects = layout.objects
        crops = [crop_box(img, obj.box) for img in images for obj in objects]
        image_emb = self.scorer.embed_images(list(images) + crops)
        text_emb = self._embed_texts([prompt] + [obj.phrase for obj in objects])

        n, k = len(images), len(objects)
        scene = image_emb[:n] @ text_emb[0]  # (n,) cosine: rows are unit vectors
        crop_sim = (image_emb[n:].reshape(n, k, -1) * text_emb[1:][None]).sum(-1) if k else None
        scores = []
        for i in range(n):
            if k:
                obj = tuple(float(v) for v in crop_sim[i])
                total = self.lam * float(scene[i]) + (1 - self.lam) * float(np.mean(obj))
            else:
                obj, total = (), float(scene[i])
            scores.append(CandidateScore(float(scene[i]), obj, total))
        return scores
