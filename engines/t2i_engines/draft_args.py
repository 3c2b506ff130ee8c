"""What both GLIGEN drafter engines (torch and onnxruntime) do with ``generate``'s arguments
before running: the same checks and the same cut of over-long phrases, so the two engines
accept, reject and truncate alike. Pure Python: importing it imports no torch."""
from __future__ import annotations

from typing import Sequence

# diffusers' StableDiffusionGLIGENPipeline has 30 fixed object slots; extra boxes are dropped.
MAX_GLIGEN_OBJECTS = 30


def grounding_beta(beta: float, steps: int) -> float:
    """GLIGEN grounds the first ``int(beta * steps)`` steps; at few steps that floors to 0 and
    the boxes would be ignored. Raise beta just enough for one grounded step (beta 0 stays 0)."""
    if beta <= 0.0:
        return 0.0
    return min(1.0, max(beta, (1.0 + 1e-6) / steps))


def count_tokens(tokenizer, text: str) -> int:
    """Tokens ``text`` takes in a CLIP-style ``tokenizer`` (a transformers tokenizer or a
    ``t2i_engines.clip_tokenizer.ClipTokenizer``), special
    tokens included, untruncated."""
    return len(tokenizer(text, truncation=False, verbose=False)["input_ids"])


def fit_to_token_limit(tokenizer, text: str, limit: int) -> str:
    """``text`` unchanged when it takes at most ``limit`` tokens (special tokens included),
    else its first ``limit - 2`` content tokens decoded back to text (room for BOS and EOS).

    GLIGEN phrases are tokenised without truncation, so an over-long one would overflow the
    text encoder's position table."""
    if count_tokens(tokenizer, text) <= limit:
        return text
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    keep = limit - 2
    while True:
        # decode -> encode is not the identity for BPE (merges across the cut can split
        # differently), so shrink until the decoded text itself fits
        cut = tokenizer.decode(ids[:keep])
        if keep <= 0 or count_tokens(tokenizer, cut) <= limit:
            return cut
        keep -= 1


def check_draft_args(phrases: Sequence[str], boxes: Sequence, seeds: Sequence[int],
                     steps: int) -> None:
    """Raise ValueError unless there is one box per phrase, at least one seed and
    ``steps`` >= 1."""
    if len(phrases) != len(boxes):
        raise ValueError(f"phrases and boxes differ in length: {len(phrases)} != {len(boxes)}")
    if not seeds:
        raise ValueError("seeds must not be empty")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
