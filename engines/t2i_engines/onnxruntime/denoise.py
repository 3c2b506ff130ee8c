"""Sampling-loop pieces shared by the onnxruntime diffusion engines, done as diffusers does,
in numpy: no torch, diffusers or transformers at run time.

The graphs (UNet, VAE) run in onnxruntime; the small per-step math around them runs in the
numpy schedulers of ``t2i_engines.schedulers`` with the noise of ``t2i_engines.noise`` (torch's
CPU ``randn`` re-done), so for the same seeds and inputs an onnxruntime engine takes the same
steps as the torch pipeline it mirrors. Arrays are float32.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from t2i_engines.noise import SeededNoise, batch_noise
from t2i_engines.step_callback import StepCallback

if TYPE_CHECKING:
    from PIL.Image import Image


def initial_latents(noise: Sequence[SeededNoise], shape: tuple[int, int, int],
                    init_noise_sigma: float) -> np.ndarray:
    """Starting noise [len(noise), C, h, w], one draw per seed's stream (as diffusers'
    ``randn_tensor`` with one generator per image), times the scheduler's ``init_noise_sigma``."""
    return (batch_noise(list(noise), shape) * np.float32(init_noise_sigma)).astype(np.float32)


def guided(noise_pred: np.ndarray, guidance_scale: float) -> np.ndarray:
    """Classifier-free guidance of a UNet output batched as [uncond..., cond...]:
    ε = ε_u + w (ε_c − ε_u)  (Ho & Salimans 2022, eq. 6)."""
    uncond, cond = np.split(noise_pred, 2)
    return uncond + np.float32(guidance_scale) * (cond - uncond)


def denoise(scheduler, latents: np.ndarray, steps: range,
            predict_noise: Callable[[int, np.ndarray, float], np.ndarray], *,
            guidance_scale: float, noise: Sequence[SeededNoise], progress: bool = False,
            on_step: StepCallback | None = None) -> np.ndarray:
    """Run the scheduler's steps ``steps`` (indices into its ``timesteps``, already set) from
    ``latents`` [B, C, h, w]; returns the final latents.

    ``predict_noise(i, model_input, t)`` runs the UNet on ``model_input`` ([2B, ...] when
    ``guidance_scale > 1``, the latents twice for classifier-free guidance, else [B, ...]) at
    timestep ``t`` of step ``i`` and returns its output, same shape. ``on_step(k)`` runs after
    the k-th step run (1-based); an exception it raises aborts the loop.
    """
    cfg = guidance_scale > 1.0
    noise = list(noise)
    for k, i in enumerate(_maybe_progress(steps, progress), start=1):
        t = float(scheduler.timesteps[i])
        model_input = np.concatenate([latents] * 2) if cfg else latents
        model_input = scheduler.scale_model_input(model_input, i)
        noise_pred = np.asarray(predict_noise(i, model_input, t), dtype=np.float32)
        if cfg:
            noise_pred = guided(noise_pred, guidance_scale)
        latents = scheduler.step(noise_pred, i, latents, noise)
        if on_step is not None:
            on_step(k)
    return latents


def timestep_batch(t: float, batch: int) -> np.ndarray:
    """A scheduler timestep as the float32 [batch] UNet input."""
    return np.full((batch,), float(t), dtype=np.float32)


def to_pil_images(images: np.ndarray) -> list["Image"]:
    """VAE output [B, 3, H, W] in [-1, 1] -> RGB PIL images, as diffusers' ``VaeImageProcessor``
    post-processes: x/2 + 1/2 clamped to [0, 1], then ×255 rounded to uint8."""
    from PIL import Image as PILImage

    pixels = np.clip(images.astype(np.float32) * 0.5 + 0.5, 0.0, 1.0).transpose(0, 2, 3, 1)
    return [PILImage.fromarray(im) for im in (pixels * 255).round().astype(np.uint8)]


def _maybe_progress(steps, enabled: bool):
    if not enabled:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc="denoising", leave=False)
