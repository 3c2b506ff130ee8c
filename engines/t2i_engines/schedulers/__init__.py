"""numpy re-implementations of the diffusers schedulers our bundles use, one module each, step
for step as diffusers writes them, so the onnxruntime/TensorRT engines need no torch.

Index-based (``step(model_output, i, sample)`` for the ``i``-th timestep of
``set_timesteps``), float32 numpy latents. :func:`load_scheduler` picks the class
that a ``scheduler_config.json``'s ``_class_name`` names.
"""
from __future__ import annotations

import json
from pathlib import Path

from t2i_engines.schedulers.ddim import DDIM
from t2i_engines.schedulers.euler_ancestral import EulerAncestral

SCHEDULERS = {cls.DIFFUSERS_CLASS: cls for cls in (DDIM, EulerAncestral)}

__all__ = ["DDIM", "EulerAncestral", "SCHEDULERS", "load_scheduler"]


def load_scheduler(folder: str | Path) -> DDIM | EulerAncestral:
    """The scheduler ``folder/scheduler_config.json`` describes; ``ValueError`` naming the
    class when it is not one of ``SCHEDULERS``."""
    path = Path(folder) / "scheduler_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable scheduler config: {exc}") from exc
    name = config.get("_class_name") if isinstance(config, dict) else None
    if name not in SCHEDULERS:
        raise ValueError(f"{path}: scheduler {name!r} is not supported without torch "
                         f"(supported: {', '.join(SCHEDULERS)})")
    return SCHEDULERS[name](config)
