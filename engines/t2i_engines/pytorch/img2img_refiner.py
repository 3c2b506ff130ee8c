"""Low-strength img2img refinement (SDXL-Turbo style) with ``AutoPipelineForImage2Image``.

``steps`` is the number of denoising steps actually run. diffusers runs
``int(num_inference_steps * strength)`` of them, so the schedule length is solved for
(``t2i_engines.refine_args.schedule_length``, shared with the onnxruntime engine).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype
from t2i_engines.pytorch.gligen_drafter import seeded_generators
from t2i_engines.step_callback import StepCallback, step_end_callback
# schedule_length stays importable from here.
from t2i_engines.refine_args import check_refine_args, schedule_length  # noqa: F401

if TYPE_CHECKING:
    from PIL.Image import Image


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
               strength: float, steps: int, *,
               on_step: StepCallback | None = None) -> list["Image"]:
        """Img2img each image with its own seed, in one batch.

        ``strength`` in (0, 1] is the fraction of the noise schedule added back; ``steps`` >= 1
        denoising steps are run. All images must share one size. ``on_step(i)`` runs after
        denoising step i (1-based); an exception it raises aborts.
        """
        import torch

        num_inference_steps, size = check_refine_args(images, seeds, strength, steps)
        if size is None:
            return []
        # quiet: diffusers warns on every truncated prompt; the SDK records truncation itself
        with torch.inference_mode(), loading_progress(False):
            out = self.pipe(
                prompt=[prompt] * len(images), image=[image.convert("RGB") for image in images],
                strength=strength, num_inference_steps=num_inference_steps,
                guidance_scale=self.guidance_scale, generator=seeded_generators(seeds),
                **step_end_callback(on_step)).images
        # The pipeline snaps sizes to the VAE's multiple; give callers back what they passed.
        return [im.convert("RGB") if im.size == size else im.convert("RGB").resize(size)
                for im in out]
