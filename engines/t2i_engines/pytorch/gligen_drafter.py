"""Layout-grounded drafts with diffusers' ``StableDiffusionGLIGENPipeline``.

One call makes one image per seed in a single batch. With no phrases the same weights run as a
plain ``StableDiffusionPipeline``. With ``regional_prompts`` each box's cross-attention reads
its own phrase (``t2i_engines.regional_prompts``). Seeds drive CPU ``torch.Generator``s, one per image, so an
image depends only on its own seed, not on the batch it was drawn in or on the device.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from t2i_engines.draft_args import (MAX_GLIGEN_OBJECTS, check_draft_args, count_tokens,
                                    fit_to_token_limit, grounding_beta)
from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype
from t2i_engines.step_callback import StepCallback, legacy_step_callback, step_end_callback

if TYPE_CHECKING:
    from PIL.Image import Image


def seeded_generators(seeds: Sequence[int]) -> list:
    """One CPU generator per seed: CPU noise is identical on every device and batch size."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


class GligenDrafterEngine:
    """GLIGEN text+box-to-image; ``generate`` returns RGB PIL images of ``height`` x ``width``."""

    def __init__(self, gligen_pipe, *, device: str, guidance_scale: float = 7.5,
                 height: int | None = None, width: int | None = None, gligen_beta: float = 0.3,
                 regional_prompts=None, progress: bool = False):
        from diffusers import StableDiffusionPipeline

        from t2i_engines.pytorch.regional_attention import make_regional
        from t2i_engines.regional_prompts import RegionalPrompts

        self.pipe = gligen_pipe
        # Same module objects, so the plain pipeline costs no extra memory.
        self.plain_pipe = StableDiffusionPipeline(
            vae=gligen_pipe.vae, text_encoder=gligen_pipe.text_encoder,
            tokenizer=gligen_pipe.tokenizer, unet=gligen_pipe.unet, scheduler=gligen_pipe.scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        for pipe in (self.pipe, self.plain_pipe):
            pipe.set_progress_bar_config(disable=not progress)
        self.device = device
        self.guidance_scale = guidance_scale
        self.height, self.width = height, width
        self.gligen_beta = gligen_beta
        self.regional = RegionalPrompts.from_option(regional_prompts)
        if self.regional:
            side = gligen_pipe.unet.config.sample_size * gligen_pipe.vae_scale_factor
            if (height or side) != (width or side):  # the masks' token grid is square
                raise ValueError(f"regional_prompts need a square image, got "
                                 f"{height or side}x{width or side}")
            make_regional(gligen_pipe.unet)
        self.tokenizer = gligen_pipe.tokenizer
        self.max_prompt_tokens: int = int(self.tokenizer.model_max_length)

    @classmethod
    def load(cls, path, *, device: str = "auto", dtype: str = "auto", guidance_scale: float = 7.5,
             height: int | None = None, width: int | None = None, gligen_beta: float = 0.3,
             regional_prompts=None, progress: bool = False) -> "GligenDrafterEngine":
        """Load a saved GLIGEN pipeline directory (safetensors only) onto ``device``; box-masked
        fusers when its UNet folder says it was trained so (``gligen_box_mask``)."""
        device = resolve_device(device)
        with loading_progress(progress):
            from diffusers import StableDiffusionGLIGENPipeline  # its import logs notices too

            pipe = StableDiffusionGLIGENPipeline.from_pretrained(
                Path(path), dtype=resolve_dtype(dtype, device), use_safetensors=True,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        from t2i_engines.box_mask_marker import is_box_masked
        from t2i_engines.pytorch.gligen_box_mask import make_box_masked

        if is_box_masked(Path(path) / "unet"):  # trained to run box-masked: run it so
            make_box_masked(pipe.unet)
        return cls(pipe.to(device), device=device, guidance_scale=guidance_scale, height=height,
                   width=width, gligen_beta=gligen_beta, regional_prompts=regional_prompts,
                   progress=progress)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the text encoder, special tokens included, untruncated."""
        return count_tokens(self.tokenizer, text)

    def generate(self, prompt: str, phrases: list[str],
                 boxes: list[tuple[float, float, float, float]], seeds: list[int],
                 steps: int, *, background: str | None = None,
                 on_step: StepCallback | None = None) -> list["Image"]:
        """One image per seed, in one batch. ``boxes`` are (x0, y0, x1, y1) in [0, 1], y down,
        one per phrase; at most 30 are used. Empty ``phrases`` means plain text-to-image.
        ``background``: the layout's background phrase (read outside the boxes by regional
        prompts set so). ``on_step(i)`` runs after denoising step i (1-based); an exception it
        raises aborts."""
        import torch

        check_draft_args(phrases, boxes, seeds, steps)
        common = dict(num_inference_steps=steps, guidance_scale=self.guidance_scale,
                      height=self.height, width=self.width, num_images_per_prompt=len(seeds),
                      generator=seeded_generators(seeds))
        # quiet: diffusers warns on every truncated prompt; the SDK records truncation itself
        with torch.inference_mode(), loading_progress(False):
            if phrases:
                n = min(len(phrases), MAX_GLIGEN_OBJECTS)
                phrases = [fit_to_token_limit(self.tokenizer, p, self.max_prompt_tokens)
                           for p in phrases[:n]]
                boxes = [[float(v) for v in b] for b in boxes[:n]]
                text = (self._regional_embeds(prompt, phrases, boxes, background)
                        if self.regional else {"prompt": prompt})
                images = self.pipe(
                    gligen_phrases=phrases, gligen_boxes=boxes, **text,
                    gligen_scheduled_sampling_beta=grounding_beta(self.gligen_beta, steps),
                    **legacy_step_callback(on_step), **common).images
            else:
                images = self.plain_pipe(prompt=prompt, **step_end_callback(on_step),
                                         **common).images
        return [image.convert("RGB") for image in images]

    def _regional_embeds(self, prompt: str, phrases: list[str], boxes: list[list[float]],
                         background: str | None) -> dict:
        """The pipeline's ``prompt_embeds`` / ``negative_prompt_embeds`` for regional prompts:
        [background; phrase blocks] with their region channels, and the empty prompt tiled to
        the same length with none (t2i_engines.regional_prompts)."""
        import torch

        from t2i_engines.regional_prompts import pack_context, region_channels

        texts = self.regional.texts(prompt, phrases, background)
        embeds = self.pipe.encode_prompt(texts, self.device, 1, False)[0]  # (1 + K, T, D)
        blocks, tokens, dim = embeds.shape
        empty = self.pipe.encode_prompt([""], self.device, 1, False)[0].repeat(1, blocks, 1)
        channels = region_channels(boxes, tokens)
        cond = pack_context(embeds.reshape(1, blocks * tokens, dim).float().cpu().numpy(), channels)
        uncond = pack_context(empty.float().cpu().numpy())
        as_tensor = lambda a: torch.from_numpy(a).to(device=self.device, dtype=embeds.dtype)  # noqa: E731
        return {"prompt_embeds": as_tensor(cond), "negative_prompt_embeds": as_tensor(uncond)}
