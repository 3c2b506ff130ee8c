"""Draft stage: a layout-grounded drafter (GLIGEN-style) behind the :class:`Drafter` protocol."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

from t2i_sdk.layout import Layout

if TYPE_CHECKING:
    from PIL.Image import Image


class GroundedGenerator(Protocol):
    max_prompt_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def generate(self, prompt: str, phrases: list[str], boxes: list, seeds: list[int],
                 steps: int, *, background: str | None = None, on_step=None) -> list["Image"]: ...


class LayoutDrafter:
    """Feeds a :class:`Layout` to an engine that takes phrases and boxes (GLIGEN's inputs)."""

    def __init__(self, engine: GroundedGenerator):
        self.engine = engine
        self.max_prompt_tokens = engine.max_prompt_tokens

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def draft(self, prompt: str, layout: Layout, seeds: Sequence[int], steps: int, *,
              on_step=None) -> list["Image"]:
        # An empty layout means plain text-to-image: the engine drops the grounding tokens.
        phrases = [o.phrase for o in layout.objects]
        boxes = [list(o.box) for o in layout.objects]
        return self.engine.generate(prompt, phrases, boxes, list(seeds), steps,
                                    background=layout.background, on_step=on_step)
