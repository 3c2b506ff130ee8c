"""``t2i-export verify``: run a source and an exported bundle on the same inputs, per component.

Metrics (each row says which): embeddings — max abs error relative to the reference's max abs;
images — mean abs pixel difference on the [0, 1] scale; LLMs — share of greedy replies that
differ. Tolerances depend on the exported dtype; a row above its tolerance fails the run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from t2i_sdk.bundle import load_bundle
from t2i_sdk.closing import release_stages
from t2i_sdk.loading import load_component
from t2i_sdk.planning import RulePlanner

_PROMPTS = ("two red apples to the left of a blue cup", "a photo of three cats",
            "a yellow star above a green square", "a black dog next to a white bench")
# (kind, dtype) -> tolerance on the row's metric
TOLERANCES = {
    ("clip", "float32"): 1e-4, ("clip", "float16"): 1e-2, ("clip", "int8"): 0.25,
    ("gligen", "float32"): 2e-3, ("gligen", "float16"): 2e-2, ("gligen", "int8"): 5e-2,
    ("img2img", "float32"): 2e-3, ("img2img", "float16"): 2e-2, ("img2img", "int8"): 5e-2,
    # greedy decoding of a random tiny LLM flips on near-ties: quantised types get room
    ("causal-lm", "float32"): 0.0, ("causal-lm", "float16"): 0.25,
    ("causal-lm", "int8"): 0.5, ("causal-lm", "int4"): 1.0,
}


@dataclass
class ParityRow:
    role: str
    engine: str
    dtype: str
    metric: str
    max_abs: float
    error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def _images(seed: int, n: int = 2, size: int = 64):
    from PIL import Image
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def _as_array(images) -> np.ndarray:
    return np.stack([np.asarray(im.convert("RGB"), np.float32) / 255.0 for im in images])


def _compare_embeddings(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    return max_abs, max_abs / max(float(np.max(np.abs(a))), 1e-12)


def _compare(kind: str, ref, got, seed: int) -> tuple[str, float, float]:
    """(metric, max_abs, error) of ``got`` against ``ref`` for one component kind."""
    if kind == "clip":
        texts = list(_PROMPTS)
        a = np.concatenate([ref.embed_images(_images(seed, 3)), ref.embed_texts(texts)])
        b = np.concatenate([got.embed_images(_images(seed, 3)), got.embed_texts(texts)])
        return ("embedding max abs / max |ref|", *_compare_embeddings(a, b))
    if kind in ("gligen", "img2img"):
        prompt = _PROMPTS[0]
        if kind == "gligen":
            layout = RulePlanner().plan(prompt)
            a, b = (_as_array(m.draft(prompt, layout, [seed, seed + 1], 2)) for m in (ref, got))
        else:
            a, b = (_as_array(m.refine(_images(seed), prompt, [seed, seed + 1], 0.5, 2)) for m in (ref, got))
        diff = np.abs(a - b)
        return "image mean abs diff [0,1]", float(diff.max()), float(diff.mean())
    if kind == "causal-lm":
        replies = []
        for model in (ref, got):
            replies.append([model.generate([{"role": "user", "content": p}], n=1, seed=seed,
                                           temperature=0.0, max_new_tokens=8)[0] for p in _PROMPTS])
        differ = sum(x != y for x, y in zip(*replies)) / len(_PROMPTS)
        return "greedy replies that differ", differ, differ
    raise ValueError(f"no parity check for kind {kind!r}")


def verify_bundles(src: Path, exported: Path, *, device: str = "cpu", seed: int = 0,
                   roles=None, progress=None) -> list[ParityRow]:
    """One :class:`ParityRow` per component whose engine differs between the two bundles."""
    src_m, exp_m = load_bundle(src), load_bundle(exported)
    rows = []
    for role, entry in exp_m.components.items():
        ref_entry = src_m.components.get(role)
        if ref_entry is None or (roles and role not in roles) or entry == ref_entry:
            continue
        if progress is not None:
            progress(role)
        ref = load_component(src, ref_entry, device)
        # A GGUF planner decodes under the layout grammar; compare the bare model like the source.
        got = load_component(exported, replace(entry, role="rewriter") if entry.role == "planner" else entry, device)
        try:
            metric, max_abs, error = _compare(entry.kind, ref, got, seed)
        finally:
            release_stages([ref, got])  # llama.cpp models are freed now, not at exit
        tol = TOLERANCES.get((entry.kind, entry.dtype), 0.0)
        rows.append(ParityRow(role, entry.engine, entry.dtype, metric, max_abs, error, tol))
    return rows
