"""Sampling-loop pieces shared by the onnxruntime diffusion engines, done as diffusers does.

The graphs (UNet, VAE) run in onnxruntime; the small per-step math around them runs in torch
on the CPU with diffusers' own scheduler classes and noise helper, so that for the same seeds
and inputs an onnxruntime engine takes the same steps as the torch pipeline it mirrors.
Tensors here are float32 CPU ``torch.Tensor``s; graphs take and give numpy arrays.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from t2i_engines.step_callback import StepCallback

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL.Image import Image


def load_scheduler(folder: str | Path):
    """The diffusers scheduler named by ``folder/scheduler_config.json``'s ``_class_name``,
    built from that config (as ``DiffusionPipeline.from_pretrained`` does)."""
    import json

    import diffusers

    folder = Path(folder)
    name = json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))["_class_name"]
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise ValueError(f"{folder}: unknown diffusers scheduler class {name!r}")
    return cls.from_pretrained(folder)


def initial_latents(generators: Sequence["torch.Generator"], shape: tuple[int, int, int],
                    init_noise_sigma: float) -> "torch.Tensor":
    """Starting noise [len(generators), C, h, w]: one draw per generator (diffusers'
    ``randn_tensor``, so a seed gives the same latents as in the torch pipeline), times the
    scheduler's ``init_noise_sigma``."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    latents = randn_tensor((len(generators), *shape), generator=list(generators),
                           device=torch.device("cpu"), dtype=torch.float32)
    return latents * init_noise_sigma


def step_kwargs(scheduler, generators: Sequence["torch.Generator"], eta: float = 0.0) -> dict:
    """Extra ``scheduler.step`` arguments, as diffusers' ``prepare_extra_step_kwargs``: ``eta``
    (DDIM) and the per-image generators (ancestral samplers) where the scheduler takes them."""
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:
        kwargs["generator"] = list(generators)
    return kwargs


def guided(noise_pred: "torch.Tensor", guidance_scale: float) -> "torch.Tensor":
    """Classifier-free guidance of a UNet output batched as [uncond..., cond...]."""
    uncond, cond = noise_pred.chunk(2)
    return uncond + guidance_scale * (cond - uncond)


def denoise(scheduler, latents: "torch.Tensor", steps: int,
            predict_noise: Callable[[int, "torch.Tensor", "torch.Tensor"], "np.ndarray"], *,
            guidance_scale: float, generators: Sequence["torch.Generator"],
            progress: bool = False, on_step: StepCallback | None = None) -> "torch.Tensor":
    """Run ``steps`` scheduler steps from ``latents`` [B, C, h, w]; returns the final latents.

    ``predict_noise(i, model_input, t)`` runs the UNet on ``model_input`` ([2B, ...] when
    ``guidance_scale > 1``, the latents twice for classifier-free guidance, else [B, ...]) at
    timestep ``t`` of step ``i`` and returns its output as a numpy array of the same shape.
    ``on_step(i)`` runs after step i (1-based); an exception it raises aborts the loop.
    """
    import torch

    scheduler.set_timesteps(steps, device="cpu")
    cfg = guidance_scale > 1.0
    extra = step_kwargs(scheduler, generators)
    for i, t in enumerate(_maybe_progress(scheduler.timesteps, progress)):
        model_input = torch.cat([latents] * 2) if cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise_pred = torch.from_numpy(predict_noise(i, model_input, t)).float()
        if cfg:
            noise_pred = guided(noise_pred, guidance_scale)
        latents = scheduler.step(noise_pred, t, latents, **extra).prev_sample
        if on_step is not None:
            on_step(i + 1)
    return latents


def timestep_batch(t: "torch.Tensor", batch: int) -> "np.ndarray":
    """A scheduler timestep (0-d int or float tensor) as the float32 [batch] UNet input."""
    import numpy as np

    return np.full((batch,), float(t), dtype=np.float32)


def to_pil_images(images: "np.ndarray") -> list["Image"]:
    """VAE output [B, 3, H, W] in [-1, 1] -> RGB PIL images, with diffusers' post-processing
    (denormalise, clamp, round to uint8) so pixels match the torch pipeline's."""
    import torch
    from diffusers.image_processor import VaeImageProcessor

    pil = VaeImageProcessor().postprocess(torch.from_numpy(images).float(), output_type="pil",
                                          do_denormalize=[True] * images.shape[0])
    return [image.convert("RGB") for image in pil]


def _maybe_progress(timesteps, enabled: bool):
    if not enabled:
        return timesteps
    from tqdm.auto import tqdm

    return tqdm(timesteps, desc="denoising", leave=False)
