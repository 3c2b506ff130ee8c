"""A judge for the synthetic shapes world: the exact GenEval rules replace a VLM.

Each Sample's image is run through the model-free shapes detector and scored against the
requirements of the USER's prompt (parsed back to its ``Caption``), never against the rewrite:
a rewrite only wins by producing an image that satisfies what the user asked for. Voting is
``ProgrammaticJudge``'s (compare two scores), and the score is the same for every reward
dimension: the shapes world has correctness only, no separate quality or aesthetics.

The module also makes the ``builtin:shapes_train`` / ``builtin:shapes_heldout`` prompt sets.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from t2i_sdk.shapes import captions as cap
from t2i_sdk.shapes import geneval
from t2i_sdk.shapes.detect import detect
from t2i_sdk.shapes.world import DEFAULT_COLORS, SHAPES

from t2i_training.data import PROMPTS_DIR, stable_fraction
from t2i_training.judges.programmatic import ProgrammaticJudge
from t2i_training.judges.protocol import Sample

# The detector's default palette: a prompt naming any other color could never be satisfied.
WORLD_SHAPES, WORLD_COLORS = SHAPES, DEFAULT_COLORS
PARTIAL_WEIGHT = 0.5  # an incorrect image scores at most this, so correct always wins
PROMPT_SET_CAP = 48  # prompts per tag in each built-in set (color_attr alone has ~1800)
PROMPT_SET_SEED = 0
PROMPT_SET_NAMES = {"shapes_train": False, "shapes_heldout": True}  # name -> is_held_out


def _normalize(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


@lru_cache(maxsize=1)
def caption_index() -> dict[str, cap.Caption]:
    """Prompt text -> Caption for every caption of every tag over the world's vocabulary
    (~2,600 entries; GenEval's templates never produce the same text for two captions)."""
    return {_normalize(c.prompt): c for tag in cap.TAGS
            for c in cap.all_captions(tag, WORLD_SHAPES, WORLD_COLORS)}


def parse_caption(prompt: str) -> cap.Caption:
    """The shapes-world Caption whose prompt is ``prompt`` (case and spacing ignored)."""
    found = caption_index().get(_normalize(prompt))
    if found is None:
        raise ValueError(f"not a shapes-world prompt: {prompt!r} (expected GenEval's wording "
                         f"over shapes {', '.join(WORLD_SHAPES)} and colors "
                         f"{', '.join(WORLD_COLORS)}, e.g. 'a photo of a red star')")
    return found


def clauses_satisfied(caption: cap.Caption, detections, image_size) -> int:
    """How many include clauses hold, each checked on its own with GenEval's rules.

    A position clause is checked together with its target clause, as GenEval does (no target
    object, no relation). Exclude clauses are left to the full verdict."""
    n = 0
    for req in caption.include:
        if req.position is None:
            include = (req,)
        else:
            relation, target = req.position
            include = (caption.include[target], replace(req, position=(relation, 0)))
        n += geneval.evaluate(replace(caption, include=include, exclude=()),
                              detections, image_size).correct
    return n


def score_image(caption: cap.Caption, image) -> float:
    """1.0 if the image is correct for ``caption`` (GenEval), else ``PARTIAL_WEIGHT`` x the
    fraction of include clauses satisfied: partial credit makes ties between two wrong images
    rarer (e.g. "a red star and a blue circle": the image with the red star scores 0.25)."""
    detections = detect(image)
    if geneval.evaluate(caption, detections, image.size).correct:
        return 1.0
    done = clauses_satisfied(caption, detections, image.size)
    return PARTIAL_WEIGHT * done / len(caption.include)


@lru_cache(maxsize=512)
def _cached_score(prompt: str, mode: str, size: tuple[int, int], pixels: bytes) -> float:
    from PIL import Image

    return score_image(parse_caption(prompt), Image.frombytes(mode, size, pixels))


def shapes_score(prompt: str, sample: Sample) -> float:
    """The ``prefer`` function: score of ``sample.image`` for the user's ``prompt`` (the
    rewrite text is ignored). Cached by pixels: each image is compared n−1 times per
    dimension, and detection would otherwise dominate the judge phase."""
    image = sample.image
    return _cached_score(prompt, image.mode, image.size, image.tobytes())


class ShapesJudge(ProgrammaticJudge):
    """Votes by :func:`shapes_score`; the same score for every reward dimension."""

    def __init__(self, *, eps: float = 1e-9):
        super().__init__(shapes_score, eps=eps)


def shapes_prompt_set(held_out: bool, cap_per_tag: int = PROMPT_SET_CAP,
                      seed: int = PROMPT_SET_SEED) -> list[str]:
    """The world's prompts with ``is_held_out(caption) == held_out``: per tag, a fixed
    hash-ranked sample of at most ``cap_per_tag`` (the same on every machine), kept in
    ``all_captions`` order. Held-out prompts exist only for two_object, position, color_attr."""
    out: list[str] = []
    for tag in cap.TAGS:
        pool = [c.prompt for c in cap.all_captions(tag, WORLD_SHAPES, WORLD_COLORS)
                if cap.is_held_out(c) == held_out]
        keep = set(sorted(pool, key=lambda p: stable_fraction(p, seed))[:cap_per_tag])
        out += [p for p in pool if p in keep]
    return out


def prompt_set_text(name: str) -> str:
    """The text of ``prompts/NAME.txt`` for a name in PROMPT_SET_NAMES."""
    header = (f"# generated by t2i_training.judges.shapes_judge.write_prompt_sets(); "
              f"do not edit\n# shapes-world captions with is_held_out == "
              f"{PROMPT_SET_NAMES[name]}, at most {PROMPT_SET_CAP} per tag\n")
    return header + "\n".join(shapes_prompt_set(PROMPT_SET_NAMES[name])) + "\n"


def write_prompt_sets(out_dir: str | Path = PROMPTS_DIR) -> list[Path]:
    """(Re)write the built-in shapes prompt files; a test checks they match."""
    paths = []
    for name in PROMPT_SET_NAMES:
        path = Path(out_dir) / f"{name}.txt"
        path.write_text(prompt_set_text(name), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_prompt_sets():
        print(written)
