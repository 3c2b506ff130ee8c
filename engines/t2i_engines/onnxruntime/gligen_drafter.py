"""Layout-grounded drafts from a GLIGEN pipeline exported to ONNX (``t2i_export``'s
``export_gligen``), with the interface and results of the torch ``GligenDrafterEngine``.

The algorithm is diffusers' ``StableDiffusionGLIGENPipeline``: CLIP prompt embeddings with
classifier-free guidance, phrase embeddings = the text encoder's pooled output, 30 object
slots with masks (zeroed for the unconditional half), GLIGEN scheduled sampling (grounding
for the first steps only), the same scheduler class and per-seed CPU noise. Without phrases
the UNet's ``gligen_scale`` input is 0, which is the plain ``StableDiffusionPipeline`` the torch
engine runs then. One UNet call per step for the whole batch.

An export made with regional prompts (``onnx_export.json``: ``"regional_prompts": true``) takes
the packed context of ``t2i_engines.regional_prompts``; with the drafter option set, each box's
cross-attention reads its own phrase, as the torch engine does.

Per ``generate`` call the UNet's conditioning (prompt embeddings, the GLIGEN boxes / phrase
embeddings / masks and both ``gligen_scale`` values) is placed on the session's device once
with IOBinding and stays there for every step; only the latents and timestep travel per step.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from t2i_engines.clip_tokenizer import ClipTokenizer
from t2i_engines.draft_args import (MAX_GLIGEN_OBJECTS, check_draft_args, count_tokens,
                                    fit_to_token_limit, grounding_beta)
from t2i_engines.noise import SeededNoise
from t2i_engines.onnxruntime.denoise import (denoise, initial_latents, timestep_batch,
                                              to_pil_images)
from t2i_engines.onnxruntime.export_format import DTYPES, MANIFEST_NAME
from t2i_engines.regional_prompts import RegionalPrompts, pack_context, region_channels
from t2i_engines.schedulers import load_scheduler
from t2i_engines.step_callback import StepCallback

if TYPE_CHECKING:
    from PIL.Image import Image


class OrtGligenDrafterEngine:
    """GLIGEN text+box-to-image on onnxruntime; ``generate`` returns RGB PIL images of
    ``height`` x ``width`` (default: the UNet's sample size times the VAE scale factor)."""

    def __init__(self, folder: Path, graphs: dict, pipeline: dict, *, guidance_scale: float,
                 height: int | None, width: int | None, gligen_beta: float, progress: bool,
                 regional_prompts=None):
        self.folder = folder
        self.text_encoder, self.unet, self.vae_decoder = (
            graphs["text_encoder"], graphs["unet"], graphs["vae_decoder"])
        self.pipeline = pipeline  # onnx_export.json's "pipeline" numbers
        self.scheduler = load_scheduler(folder / "scheduler")
        self.tokenizer = ClipTokenizer(folder / "tokenizer")
        self.device: str = self.unet.device
        self.guidance_scale = guidance_scale
        self.height, self.width = height, width
        self.gligen_beta = gligen_beta
        self.regional = RegionalPrompts.from_option(regional_prompts)
        if self.regional and not pipeline.get("regional_prompts"):
            raise ValueError(f"{folder}: the drafter option regional_prompts is set but this "
                             "UNet was exported without regional cross-attention; export the "
                             "bundle again (t2i-export onnx)")
        self.progress = progress
        self.max_prompt_tokens: int = int(self.tokenizer.model_max_length)

    @classmethod
    def load(cls, path, *, device: str = "auto", dtype: str = "auto", guidance_scale: float = 7.5,
             height: int | None = None, width: int | None = None, gligen_beta: float = 0.3,
             regional_prompts=None, progress: bool = False,
             runtime: str = "onnxruntime") -> "OrtGligenDrafterEngine":
        """Open an ``export_gligen`` folder. ``device``: "auto" (TensorRT > CUDA > CPU provider,
        whichever onnxruntime has) | "cpu" | "cuda[:i]". ``dtype`` is checked but the graphs'
        precision (see ``onnx_export.json``) is what runs. ``runtime="tensorrt"`` runs the
        ``.plan`` engines built beside the graphs."""
        from t2i_engines.onnxruntime.graph_runner import load_graph

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        folder = Path(path)
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ValueError(f"{folder}: no {MANIFEST_NAME}; not an exported GLIGEN folder")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        graphs = {name: load_graph(folder / entry["path"], device=device, runtime=runtime)
                  for name, entry in manifest["graphs"].items()}
        return cls(folder, graphs, manifest["pipeline"], guidance_scale=guidance_scale,
                   height=height, width=width, gligen_beta=gligen_beta, progress=progress,
                   regional_prompts=regional_prompts)

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
        check_draft_args(phrases, boxes, seeds, steps)
        n = min(len(phrases), MAX_GLIGEN_OBJECTS)
        phrases = [fit_to_token_limit(self.tokenizer, p, self.max_prompt_tokens)
                   for p in phrases[:n]]
        batch, cfg = len(seeds), self.guidance_scale > 1.0
        prompt_embeds, phrase_embeds = self._encode(prompt, phrases, boxes[:n], background,
                                                    batch, cfg)
        gligen = self._gligen_inputs(phrase_embeds, boxes[:n], batch, cfg)
        grounded_steps = int(grounding_beta(self.gligen_beta, steps) * steps) if n else 0

        predict_noise = self._noise_predictor(prompt_embeds, gligen, grounded_steps)
        noise = [SeededNoise(s) for s in seeds]
        h, w = self._latent_size()
        self.scheduler.set_timesteps(steps)
        latents = initial_latents(noise, (self.pipeline["latent_channels"], h, w),
                                  self.scheduler.init_noise_sigma)
        latents = denoise(self.scheduler, latents, range(steps), predict_noise,
                          guidance_scale=self.guidance_scale, noise=noise,
                          progress=self.progress, on_step=on_step)
        scaled = latents / np.float32(self.pipeline["vae_scaling_factor"])
        return to_pil_images(self.vae_decoder.run({"latent": scaled})["image"])

    def _noise_predictor(self, prompt_embeds: "np.ndarray", gligen: dict,
                         grounded_steps: int) -> Callable:
        """``denoise``'s UNet callback, with the conditioning bound on the device once.

        The latents still round-trip each step because the scheduler math runs in numpy on
        the CPU; they are [2B, 4, h, w] (~128 KB per image at 512 px), several times smaller
        than the prompt + GLIGEN conditioning that no longer does.
        """
        from t2i_engines.onnxruntime.session import place_constants, run_to_host

        constants = place_constants(self.unet, {"encoder_hidden_states": prompt_embeds, **gligen})
        grounded = place_constants(self.unet, {"gligen_scale": _scale(1.0)})
        plain = place_constants(self.unet, {"gligen_scale": _scale(0.0)})

        def predict_noise(i, model_input, t):
            feeds = {"sample": model_input,
                     "timestep": timestep_batch(t, model_input.shape[0]),
                     **constants, **(grounded if i < grounded_steps else plain)}
            return run_to_host(self.unet, feeds)["out_sample"]
        return predict_noise

    def _latent_size(self) -> tuple[int, int]:
        factor, multiple = self.pipeline["vae_scale_factor"], self.pipeline["image_size_multiple"]
        default = self.pipeline["sample_size"] * factor
        height, width = self.height or default, self.width or default
        if height % multiple or width % multiple:
            # The traced UNet has no padding branch for sizes its down-sampling cannot halve.
            raise ValueError(f"height and width must be multiples of {multiple} for this "
                             f"exported UNet, got {height}x{width}")
        if fixed_grid(self.pipeline) and (height, width) != (default, default):
            # The box mask's and regional prompts' token grids were traced at the sample size.
            raise ValueError(f"this exported UNet is {fixed_grid(self.pipeline)} and runs at "
                             f"{default}x{default} only, got {height}x{width}")
        return height // factor, width // factor

    def _encode(self, prompt: str, phrases: list[str], boxes, background: str | None,
                batch: int, cfg: bool) -> tuple["np.ndarray", "np.ndarray"]:
        """(prompt embeddings [2B or B, L, D] ordered [uncond..., cond...], phrase pooled
        embeddings [n, D]) from one text-encoder call. L = 77, or with regional prompts
        77 x (1 + n) with region channels behind each embedding (the unconditional half: the
        empty prompt tiled, no regions)."""
        regional = self.regional if phrases else None
        blocks = regional.texts(prompt, phrases, background) if regional else [prompt]
        texts = ([""] if cfg else []) + blocks + phrases
        ids = self.tokenizer(texts, padding="max_length", max_length=self.max_prompt_tokens,
                             truncation=True, return_tensors="np")["input_ids"]
        out = self.text_encoder.run({"input_ids": ids.astype(np.int64)})
        hidden = out["last_hidden_state"].astype(np.float32)
        k, tokens, dim = int(cfg), hidden.shape[1], hidden.shape[2]
        cond = hidden[k:k + len(blocks)].reshape(1, len(blocks) * tokens, dim)
        uncond = np.tile(hidden[:1], (1, len(blocks), 1)) if cfg else None
        if self.pipeline.get("regional_prompts"):  # the graph takes packed contexts
            cond = pack_context(cond, region_channels(boxes, tokens) if regional else None)
            uncond = pack_context(uncond) if cfg else None
        contexts = np.concatenate([uncond, cond]) if cfg else cond
        prompt_embeds = np.repeat(contexts, batch, axis=0)
        return prompt_embeds, out["pooler_output"][k + len(blocks):].astype(np.float32)

    def _gligen_inputs(self, phrase_embeds: "np.ndarray", boxes, batch: int,
                       cfg: bool) -> dict[str, "np.ndarray"]:
        """The 30-slot box / embedding / mask inputs, repeated for the batch; the
        unconditional half gets all-zero masks, as in diffusers."""
        slots, n = self.pipeline["max_objects"], len(phrase_embeds)
        box_slots = np.zeros((slots, 4), np.float32)
        embed_slots = np.zeros((slots, self.pipeline["cross_attention_dim"]), np.float32)
        mask_slots = np.zeros((slots,), np.float32)
        if n:
            box_slots[:n] = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
            embed_slots[:n] = phrase_embeds
            mask_slots[:n] = 1.0
        masks = np.repeat(mask_slots[None], batch, axis=0)
        if cfg:
            masks = np.concatenate([np.zeros_like(masks), masks])
        total = masks.shape[0]
        return {"gligen_boxes": np.repeat(box_slots[None], total, axis=0),
                "gligen_positive_embeddings": np.repeat(embed_slots[None], total, axis=0),
                "gligen_masks": masks}


def fixed_grid(pipeline: dict) -> str | None:
    """Why an exported UNet runs at its sample size only (its attention masks' token grids
    were traced there), or None when any multiple of ``image_size_multiple`` runs."""
    reasons = [why for key, why in (("box_mask", "box-masked"),
                                    ("regional_prompts", "regional")) if pipeline.get(key)]
    return " and ".join(reasons) or None


def _scale(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float32)
