"""Per-denoising-step callbacks: how an engine tells its caller "step i is done".

Every diffusion engine takes ``on_step(i)``, called after denoising step ``i`` (1-based) of a
call; an exception it raises aborts the call (the SDK uses that for cancellation and per-step
deadlines). diffusers has two callback conventions, adapted here so engines share one.
"""
from __future__ import annotations

from typing import Callable

StepCallback = Callable[[int], None]


def legacy_step_callback(on_step: StepCallback | None) -> dict:
    """``callback=``/``callback_steps=`` kwargs for pipelines with the old API (GLIGEN)."""
    if on_step is None:
        return {}
    # diffusers passes the 0-based index of the step just finished
    return {"callback": lambda i, t, latents: on_step(i + 1), "callback_steps": 1}


def step_end_callback(on_step: StepCallback | None) -> dict:
    """``callback_on_step_end=`` kwarg for pipelines with the current API (SD, img2img)."""
    if on_step is None:
        return {}

    def callback(pipe, i, t, tensors):
        on_step(i + 1)
        return tensors  # diffusers expects the (unchanged) tensors back
    return {"callback_on_step_end": callback}
