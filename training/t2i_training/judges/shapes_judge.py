"""A judge for the synthetic shapes world: the exact GenEval rules replace a VLM.

Each Sample's image is run through the model-free shapes detector and scored against the
requirements of the USER's prompt (parsed back to its ``Caption``), never against the rewrite:
a rewrite only wins by producing an image that satisfies what the user asked for. Voting is
``ProgrammaticJudge``'s (compare two scores), one exact score per reward dimension
(``shapes_dimensions``).

The module also makes the ``builtin:shapes_train`` / ``builtin:shapes_heldout`` prompt sets and
their user-style counterparts ``builtin:shapes_freeform_train`` / ``shapes_freeform_heldout``
(jsonl: each free-form text with its canonical caption, which ``parse_caption`` reads back).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from t2i_sdk.shapes import captions as cap
from t2i_sdk.shapes.detect import detect
from t2i_sdk.shapes.freeform import freeform_set
from t2i_sdk.shapes.suites import SUITE_SEED
from t2i_sdk.shapes.world import DEFAULT_COLORS, SHAPES

from t2i_training.data import PROMPTS_DIR, stable_fraction
from t2i_training.judges.programmatic import ProgrammaticJudge
from t2i_training.judges.protocol import REWARD_DIMENSIONS, Sample
from t2i_training.judges.shapes_dimensions import alignment_score, dimension_scores

# The detector's default palette: a prompt naming any other color could never be satisfied.
WORLD_SHAPES, WORLD_COLORS = SHAPES, DEFAULT_COLORS
PROMPT_SET_CAP = 48  # prompts per tag in each built-in set (color_attr alone has ~1800)
PROMPT_SET_SEED = 0
PROMPT_SET_NAMES = {"shapes_train": False, "shapes_heldout": True}  # name -> is_held_out
FREEFORM_HELDOUT_PER_TAG = 16  # the held-out file is the "shapes-freeform" suite at this size
# name -> (split, per tag, seed) of freeform_set; train seeds like PROMPT_SET_SEED
FREEFORM_SET_NAMES = {"shapes_freeform_train": ("train", PROMPT_SET_CAP, PROMPT_SET_SEED),
                      "shapes_freeform_heldout": ("heldout", FREEFORM_HELDOUT_PER_TAG, SUITE_SEED)}


def _normalize(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


@lru_cache(maxsize=1)
def caption_index() -> dict[str, cap.Caption]:
    """Prompt text -> Caption for every caption of every tag over the world's vocabulary
    (~2,600 entries; GenEval's templates never produce the same text for two captions)."""
    return {_normalize(c.prompt): c for tag in cap.TAGS
            for c in cap.all_captions(tag, WORLD_SHAPES, WORLD_COLORS)}


@lru_cache(maxsize=1)
def freeform_index() -> dict[str, cap.Caption]:
    """Free-form text -> Caption for every line of the built-in free-form prompt files."""
    index: dict[str, cap.Caption] = {}
    for name in FREEFORM_SET_NAMES:
        path = PROMPTS_DIR / f"{name}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            key, caption = _normalize(item["prompt"]), caption_index()[_normalize(item["caption"])]
            if index.setdefault(key, caption) != caption:
                raise ValueError(f"{path}: {item['prompt']!r} maps to two captions")
    return index


def parse_caption(prompt: str, specs: dict[str, str] | None = None) -> cap.Caption:
    """The shapes-world Caption whose prompt is ``prompt`` (case and spacing ignored): GenEval's
    wording, a user-style prompt from the built-in free-form sets, or a prompt that ``specs``
    (``{typed text: canonical caption}``, e.g. from a jsonl prompt file) maps to one."""
    key = _normalize(prompt)
    if specs and prompt in specs:
        key = _normalize(specs[prompt])
    found = caption_index().get(key) or freeform_index().get(key)
    if found is None:
        raise ValueError(f"not a shapes-world prompt: {prompt!r} (expected GenEval's wording "
                         f"over shapes {', '.join(WORLD_SHAPES)} and colors "
                         f"{', '.join(WORLD_COLORS)}, e.g. 'a photo of a red star')")
    return found


def score_image(caption: cap.Caption, image) -> float:
    """The physical-alignment score: 1.0 if GenEval judges ``image`` correct for ``caption``,
    else partial credit (see ``shapes_dimensions.alignment_score``)."""
    return alignment_score(caption, detect(image), image.size)


@lru_cache(maxsize=512)
def _cached_scores(caption: cap.Caption, mode: str, size: tuple[int, int], pixels: bytes,
                   penalize_unrequested: bool) -> dict:
    from PIL import Image

    return dimension_scores(caption, Image.frombytes(mode, size, pixels),
                            penalize_unrequested=penalize_unrequested)


def image_scores(prompt: str, image, specs: dict[str, str] | None = None, *,
                 penalize_unrequested: bool = False) -> dict[str, float]:
    """Every dimension's score of ``image`` for the user's ``prompt`` (see ``parse_caption``
    for ``specs``, ``dimension_scores`` for ``penalize_unrequested``). Cached by pixels: each
    image is compared 2(n−1) times per dimension, and detection would otherwise dominate the
    judge phase."""
    caption = parse_caption(prompt, specs)
    return _cached_scores(caption, image.mode, image.size, image.tobytes(), penalize_unrequested)


class ShapesJudge(ProgrammaticJudge):
    """Votes on each of the paper's four dimensions by the detector's exact answer to it
    (``shapes_dimensions``): image sanity, objects present, counts/colours/positions, shape
    clarity, all against the user's spec. ``specs`` maps typed prompts to their canonical
    captions (a jsonl prompt file's ``"caption"`` fields). ``penalize_unrequested`` (run
    config: ``judge: {kind: shapes, options: {penalize_unrequested: true}}``): shapes nobody
    asked for count against objects-present (see ``shapes_dimensions``)."""

    def __init__(self, *, specs: dict[str, str] | None = None, eps: float = 1e-9,
                 penalize_unrequested: bool = False):
        self.specs = dict(specs or {})
        self.penalize_unrequested = bool(penalize_unrequested)
        super().__init__({dim: self._scorer(dim) for dim in REWARD_DIMENSIONS}, eps=eps)

    def _scorer(self, dimension: str):
        def prefer(prompt: str, sample: Sample) -> float:  # the rewrite text is ignored
            return image_scores(prompt, sample.image, self.specs,
                                penalize_unrequested=self.penalize_unrequested)[dimension]
        return prefer


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


def freeform_set_text(name: str) -> str:
    """The text of ``prompts/NAME.jsonl`` for a name in FREEFORM_SET_NAMES: one
    ``{"prompt": free-form text, "caption": canonical prompt}`` per line."""
    split, per_tag, seed = FREEFORM_SET_NAMES[name]
    return "".join(json.dumps({"prompt": p.text, "caption": p.caption.prompt}) + "\n"
                   for p in freeform_set(split, per_tag=per_tag, seed=seed))


def write_prompt_sets(out_dir: str | Path = PROMPTS_DIR) -> list[Path]:
    """(Re)write the built-in shapes prompt files; a test checks they match."""
    texts = {f"{name}.txt": prompt_set_text(name) for name in PROMPT_SET_NAMES}
    texts |= {f"{name}.jsonl": freeform_set_text(name) for name in FREEFORM_SET_NAMES}
    paths = []
    for filename, text in texts.items():
        path = Path(out_dir) / filename
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_prompt_sets():
        print(written)
