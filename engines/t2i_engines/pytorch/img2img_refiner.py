"""Low-strength img2img refinement (SDXL-Turbo style) with ``AutoPipelineForImage2Image``.

``steps`` is the number of denoising steps actually run. diffusers runs
``int(num_inference_steps * strength)`` of them, so the schedule length is solved for here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype
from t2i_engines.pytorch.gligen_drafter import seeded_generators

if TYPE_CHECKING:
    from PIL.Image import Image


def schedule_length(steps: int, strength: float) -> int:
    """Smallest ``num_inference_steps`` for which diffusers runs exactly ``steps`` steps at
    ``strength`` (it runs ``int(num_inference_steps * strength)``). 2 steps at 0.5 -> 4."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = max(steps, math.ceil(steps / strength - 1e-9))
    while int(n * strength) < steps:  # float rounding: 10 * 0.3 may land just below 3
        n += 1
    return n


class Img2ImgRefinerEngine:
    """Refines RGB PIL images; outputs have each input's size."""

    def __init__(self, pipe, *, device: str, guidance_scale: float = 0.0, progress: bool = False):
        self.pipe = pipe
        self.pipe.set_progress_bar_config(disable=not progress)
        self.device = device
        self.guidance_scale = guidance_scale

    @classmethod
    def load(cls, path, *, device: str = "auto", dtype: str = "auto", guidance_scale: float = 0.0,
             progress: bool = False) -> "Img2ImgRefinerEngine":
        """Load a saved text-to-image or img2img pipeline directory as its img2img variant."""
        device = resolve_device(device)
        with loading_progress(progress):
            from diffusers import AutoPipelineForImage2Image  # its import logs notices too

            pipe = AutoPipelineForImage2Image.from_pretrained(
                Path(path), dtype=resolve_dtype(dtype, device), use_safetensors=True)
        return cls(pipe.to(device), device=device, guidance_scale=guidance_scale,
                   progress=progress)

    def refine(self, images: Sequence["Image"], prompt: str, seeds: Sequence[int],
               strength: float, steps: int) -> list["Image"]:
        """Img2img each image with its own seed, in one batch.

        ``strength`` in (0, 1] is the fraction of the noise schedule added back; ``steps`` >= 1
        denoising steps are run. All images must share one size.
        """
        import torch

        num_inference_steps = schedule_length(steps, strength)
        if len(images) != len(seeds):
            raise ValueError(f"images and seeds differ in length: {len(images)} != {len(seeds)}")
        if not images:
            return []
        sizes = {image.size for image in images}
        if len(sizes) != 1:
            raise ValueError(f"images must share one size, got {sorted(sizes)}")
        size = sizes.pop()
        with torch.inference_mode():
            out = self.pipe(
                prompt=[prompt] * len(images), image=[image.convert("RGB") for image in images],
                strength=strength, num_inference_steps=num_inference_steps,
                guidance_scale=self.guidance_scale, generator=seeded_generators(seeds)).images
        # The pipeline snaps sizes to the VAE's multiple; give callers back what they passed.
        return [im.convert("RGB") if im.size == size else im.convert("RGB").resize(size)
                for im in out]
