"""Regional prompts: inside its box, the drafter's cross-attention reads the object's own phrase.

A layout-grounded drafter still reads the whole caption in every visual token's
cross-attention, so "a red star and a blue circle" offers both colours to both boxes and
the colours swap or merge (the shapes world measured it: colour attribution 0.22 at one draft
with objects in their boxes 89 % of the time). Regional prompting (as in LLM-grounded
Diffusion, Lian et al. 2023, and regional-prompting pipelines) gives each box its own text:
the conditional context becomes [background text; phrase 1; …; phrase K], each block encoded
alone, and a visual token may attend to phrase k's tokens only when its grid cell overlaps
box k; tokens outside every box read the background block. The unconditional half reads the
empty prompt, so classifier-free guidance still contrasts text against no text.

This module is torch-free: the settings, the texts to encode and the packed per-token region
channels that both the torch engine and the exported ONNX UNet take. Each context token
carries ``REGION_CHANNELS`` numbers behind its embedding: its block's box (x0, y0, x1, y1) and
1.0 for a phrase block (0.0 for the background block and for the whole unconditional half).
A context whose flags are all 0 is plain cross-attention.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Sequence

import numpy as np

REGION_CHANNELS = 5  # box (4) + phrase-block flag (1) behind each context token's embedding
BACKGROUNDS = ("caption", "layout")


@dataclass(frozen=True)
class RegionalPrompts:
    """What each region reads. ``template`` turns an object's phrase into its block's text
    (one ``{}``; "a photo of {}" keeps a drafter trained on "a photo of …" captions in its
    own dialect). ``background``: "caption" = outside the boxes the whole prompt (scene and
    style words reach the background, and so do the objects' words); "layout" = the layout's
    background phrase only, or the empty prompt when it has none (no stray copies of the
    objects outside their boxes)."""

    template: str = "{}"
    background: str = "caption"

    def __post_init__(self):
        if not _one_placeholder(self.template):
            raise ValueError(f"regional_prompts template must contain one '{{}}' and no other "
                             f"braces, got {self.template!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"regional_prompts background must be one of "
                             f"{', '.join(BACKGROUNDS)}, got {self.background!r}")

    @classmethod
    def from_option(cls, option) -> "RegionalPrompts | None":
        """The drafter option ``regional_prompts`` (null/absent = off, or an object with keys
        ``template`` and ``background``) as settings."""
        if option is None or option is False:
            return None
        if isinstance(option, RegionalPrompts):
            return option
        return cls(**dict(option))

    def texts(self, prompt: str, phrases: Sequence[str], background: str | None) -> list[str]:
        """The conditional context's blocks, in order: background text, then one per phrase."""
        back = prompt if self.background == "caption" else (background or "")
        return [back] + [self.template.format(p) for p in phrases]


def _one_placeholder(template) -> bool:
    """Exactly one bare ``{}`` and no other format field or escaped brace."""
    if not isinstance(template, str):
        return False
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:  # an unmatched brace
        return False
    placeholders = [f for f in fields if f[1] is not None]
    return (len(placeholders) == 1 and placeholders[0][1:] == ("", "", None)
            and "{{" not in template and "}}" not in template)


def region_channels(boxes: Sequence[Sequence[float]], block_tokens: int) -> np.ndarray:
    """(block_tokens · (1 + K), REGION_CHANNELS) float32: zeros for the background block,
    then box k and flag 1 for each of phrase k's tokens."""
    k = len(boxes)
    out = np.zeros(((1 + k) * block_tokens, REGION_CHANNELS), np.float32)
    for i, box in enumerate(boxes):
        rows = slice((i + 1) * block_tokens, (i + 2) * block_tokens)
        out[rows, :4] = np.asarray(box, np.float32).reshape(4)
        out[rows, 4] = 1.0
    return out


def pack_context(embeddings: np.ndarray, channels: np.ndarray | None = None) -> np.ndarray:
    """[…, L, D] embeddings with their [L, REGION_CHANNELS] region channels behind them
    (zeros, i.e. plain cross-attention, when ``channels`` is None)."""
    lead = embeddings.shape[:-1]
    if channels is None:
        channels = np.zeros((lead[-1], REGION_CHANNELS), np.float32)
    return np.concatenate([embeddings.astype(np.float32),
                           np.broadcast_to(channels, (*lead, REGION_CHANNELS))], axis=-1)
