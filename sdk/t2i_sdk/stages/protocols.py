"""The five stage protocols. Each is small so a new backend is one class.

Images are ``PIL.Image.Image`` in RGB. Seeds are ints; the same seed gives the same image.
Drafters and refiners may take a keyword ``on_step(i)``, called after denoising step i
(1-based), whose exceptions abort the call: the pipeline then honours cancellation and its
deadline between denoising steps (without it, only between calls).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

    from t2i_sdk.layout import Layout


@runtime_checkable
class Rewriter(Protocol):
    def rewrite(self, prompt: str, n: int, seed: int) -> list[str]:
        """Return ``n`` rewrites of ``prompt`` (input-side scaling); may repeat the prompt."""


@runtime_checkable
class LayoutPlanner(Protocol):
    def plan(self, prompt: str) -> "Layout":
        """Turn a prompt into boxes; ``Layout.notes`` says what was clamped or fell back."""


@runtime_checkable
class Drafter(Protocol):
    max_prompt_tokens: int  # the text encoder's limit; longer prompts are truncated

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the drafter's text encoder, special tokens included."""

    def draft(self, prompt: str, layout: "Layout", seeds: Sequence[int], steps: int) -> list["Image"]:
        """One image per seed, batched; grounded on ``layout`` unless it is empty."""


@runtime_checkable
class Scorer(Protocol):
    def embed_images(self, images: Sequence["Image"]) -> "np.ndarray":
        """(n, d) float32, rows L2-normalised."""

    def embed_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """(m, d) float32, rows L2-normalised, same space as ``embed_images``."""


@runtime_checkable
class Refiner(Protocol):
    def refine(self, images: Sequence["Image"], prompt: str, seeds: Sequence[int],
               strength: float, steps: int) -> list["Image"]:
        """Low-strength img2img: ``strength`` in (0, 1] is the fraction of noise added back;
        ``steps`` denoising steps are actually run (not scaled down by ``strength``)."""
