"""Fixed evaluation prompt sets for the shapes world.

How the "shapes" suite is kept apart from training (``world.scene_stream``):
* two_object, position, color_attr: prompts come only from held-out compositions
  (``captions.is_held_out``: a salted SHA-256 of the order-free composition key puts ~20% of
  shape pairs / colored-shape pairs aside). ``scene_stream`` never yields those captions, so
  these tags measure compositional generalisation.
* single_object, colors, counting: their whole prompt space is the vocabulary (7, 56 and 21
  prompts), so the prompts are shared with training; the evaluated images are the model's own,
  drawn with evaluation seeds, never scenes from the stream.
When a tag has fewer prompts than ``per_category``, prompts repeat evenly (GenEval, too, scores
several images per prompt); the run's image seed differs per item.

"shapes-freeform" scores the same captions, but the text typed is a held-out user-style
rewording of each (``t2i_sdk.shapes.freeform``), so the two suites compare prompt for prompt.
"""
from __future__ import annotations

import numpy as np

from t2i_sdk.errors import InputError
from t2i_sdk.shapes.captions import HELD_OUT_TAGS, TAGS, Caption, all_captions, is_held_out
from t2i_sdk.shapes.world import Scene, WorldConfig, scene_for_caption

CANONICAL_SUITE, FREEFORM_SUITE = "shapes", "shapes-freeform"
SUITES = (CANONICAL_SUITE, FREEFORM_SUITE)
SUITE_SEED = 12345  # the default choice of prompts


def held_out_suite(name: str = CANONICAL_SUITE, per_category: int = 50, seed: int = SUITE_SEED,
                   config: WorldConfig | None = None) -> list[Caption]:
    """``per_category`` captions for each of the six GenEval tags, grouped in TAGS order.

    Deterministic in (``name``, ``per_category``, ``seed``, the config's shapes and colors);
    a smaller ``per_category`` gives a prefix of each tag's list for a larger one. Every suite
    has these captions; they differ only in the text typed (``suite_prompts``)."""
    if name not in SUITES:
        raise InputError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    if per_category < 1:
        raise InputError(f"per_category must be >= 1, got {per_category}")
    config = config or WorldConfig()
    suite: list[Caption] = []
    for t, tag in enumerate(TAGS):
        pool = all_captions(tag, config.shapes, config.colors)
        if tag in HELD_OUT_TAGS:
            pool = [c for c in pool if is_held_out(c)]
        if not pool:
            raise InputError(f"suite {name!r}: no held-out {tag} prompts for this vocabulary")
        order = np.random.default_rng([seed, t]).permutation(len(pool))
        repeats = -(-per_category // len(pool))
        suite += [pool[int(i)] for i in np.tile(order, repeats)[:per_category]]
    return suite


def suite_prompts(name: str, per_category: int, seed: int = SUITE_SEED
                  ) -> list[tuple[str, Caption]]:
    """(text the user typed, caption it is scored against) for each item of suite ``name``:
    the caption's own prompt for "shapes", its held-out free-form wording for "shapes-freeform"."""
    captions = held_out_suite(name, per_category, seed)
    if name == CANONICAL_SUITE:
        return [(c.prompt, c) for c in captions]
    from t2i_sdk.shapes.freeform import freeform_set  # it imports this module

    prompts = freeform_set("heldout", per_tag=per_category, seed=seed)
    assert [p.caption for p in prompts] == captions
    return [(p.text, p.caption) for p in prompts]


def reference_scenes(captions: list[Caption], seed: int = 0,
                     config: WorldConfig | None = None) -> list[Scene]:
    """One ground-truth scene per caption (an oracle "model"): rendered, each scores correct."""
    rng = np.random.default_rng(seed)
    return [scene_for_caption(c, rng, config) for c in captions]
