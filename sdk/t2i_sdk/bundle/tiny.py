"""``t2i bundle tiny``: a bundle of the real architectures with random weights, built in seconds
on a CPU and identical for the same seed. Tests and the demo run on it; its images are noise."""
from __future__ import annotations

import tempfile
from pathlib import Path

TINY_OPTIONS = {
    "drafter": {"guidance_scale": 5.0, "height": 64, "width": 64},
    "refiner": {"guidance_scale": 0.0, "refine_strength": 0.5, "refine_steps": 2},
    "rewriter": {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 24},
    "planner": {},
}


def build_tiny_bundle(out_dir: str | Path, *, seed: int = 0, overwrite: bool = False,
                      progress=None):
    """Build every component into a temp dir, then assemble the bundle atomically at ``out_dir``.

    ``progress(step_name)`` is called before each component (for a progress bar).
    Returns the :class:`BundleManifest`.
    """
    from t2i_engines.pytorch.device import loading_progress
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama
    from t2i_engines.pytorch.tiny.clip_model import build_tiny_clip
    from t2i_engines.pytorch.tiny.diffusion_models import build_tiny_gligen, build_tiny_refiner

    from t2i_sdk.bundle.create import create_bundle

    builders = {
        "drafter": lambda d: build_tiny_gligen(d, seed=seed),
        "scorer": lambda d: build_tiny_clip(d, seed=seed + 1),
        "refiner": lambda d: build_tiny_refiner(d, seed=seed + 2),
        "rewriter": lambda d: build_tiny_llama(d, seed=seed + 3),
        "planner": lambda d: build_tiny_llama(d, seed=seed + 4),
    }
    with tempfile.TemporaryDirectory(prefix="t2i-tiny-") as tmp:
        sources = {}
        for role, build in builders.items():
            if progress is not None:
                progress(role)
            with loading_progress(False):  # no per-file "Writing model shards" bars
                sources[role] = build(Path(tmp) / role)
        return create_bundle(out_dir, sources, options=TINY_OPTIONS, name=f"tiny-seed{seed}",
                             overwrite=overwrite)
