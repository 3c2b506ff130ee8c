"""The training noise schedule shared by the schedulers: betas -> cumulative alphas, and the
inference timestep spacings of Lin et al. 2023, Table 2 ("linspace", "leading", "trailing")."""
from __future__ import annotations

import numpy as np


def alphas_cumprod(config: dict) -> np.ndarray:
    """ᾱ_t = Π_{s≤t} (1 − β_s) [num_train_timesteps] float32, β from the config's schedule."""
    n = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 0.0001)), float(config.get("beta_end", 0.02))
    schedule = config.get("beta_schedule", "linear")
    if config.get("rescale_betas_zero_snr"):
        raise ValueError("rescale_betas_zero_snr schedulers are not supported")
    if config.get("trained_betas") is not None:
        betas = np.asarray(config["trained_betas"], dtype=np.float32)
    elif schedule == "linear":
        betas = np.linspace(start, end, n, dtype=np.float32)
    elif schedule == "scaled_linear":  # Stable Diffusion's: linear in sqrt(β)
        betas = np.linspace(start**0.5, end**0.5, n, dtype=np.float32) ** 2
    else:
        raise ValueError(f"beta_schedule {schedule!r} is not supported")
    return np.cumprod(1.0 - betas, dtype=np.float32)


def spaced_timesteps(config: dict, steps: int, *, dtype=np.int64,
                     default_spacing: str = "leading") -> np.ndarray:
    """``steps`` training timesteps, descending, by the config's ``timestep_spacing``
    (``default_spacing`` when the config has none, as each diffusers class defaults)."""
    n_train = int(config.get("num_train_timesteps", 1000))
    if not 1 <= steps <= n_train:
        raise ValueError(f"steps must be in [1, {n_train}], got {steps}")
    spacing = config.get("timestep_spacing", default_spacing)
    if spacing == "linspace":
        t = np.linspace(0, n_train - 1, steps)
        t = (t.round() if dtype == np.int64 else t)[::-1]
    elif spacing == "leading":
        ratio = n_train // steps
        t = (np.arange(0, steps) * ratio).round()[::-1] + int(config.get("steps_offset", 0))
    elif spacing == "trailing":
        t = np.round(np.arange(n_train, 0, -n_train / steps)) - 1
    else:
        raise ValueError(f"timestep_spacing {spacing!r} is not supported")
    return np.ascontiguousarray(t).astype(dtype)
