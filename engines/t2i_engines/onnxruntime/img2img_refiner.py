"""Low-strength img2img refinement from exported ONNX graphs (SDXL-Turbo style, or plain SD).

Same interface and results as the torch ``Img2ImgRefinerEngine``: it re-does diffusers'
``StableDiffusionXLImg2ImgPipeline`` (``StableDiffusionImg2ImgPipeline`` for SD folders) around
the graphs written by ``t2i_export.onnx.img2img_export``, in numpy: no torch, diffusers or
transformers at run time. Noise is each seed's stream of ``t2i_engines.noise`` (torch's CPU
``randn`` re-done), drawn in the same order (posterior sample, ``add_noise``, one draw per
ancestral step), and the numpy schedulers of ``t2i_engines.schedulers`` (DDIM, Euler
ancestral) step as diffusers writes them, so only the graphs' own rounding separates the two
engines. The UNet's text
conditions (embeddings, SDXL pooled embeds and time ids) go to the session's device once per
``refine`` call with IOBinding and stay there; only latents and timestep travel per step.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from t2i_engines.clip_tokenizer import ClipTokenizer
from t2i_engines.noise import SeededNoise, batch_noise
from t2i_engines.onnxruntime.denoise import denoise, timestep_batch, to_pil_images
from t2i_engines.onnxruntime.export_format import DTYPES, MANIFEST_NAME
from t2i_engines.onnxruntime.session import OrtModel, place_constants, run_to_host
from t2i_engines.schedulers import load_scheduler
# Pure Python (no torch at import): the one rule for how many steps a strength runs.
from t2i_engines.refine_args import check_refine_args, schedule_length
from t2i_engines.step_callback import StepCallback

if TYPE_CHECKING:
    from PIL.Image import Image

AESTHETIC_SCORES = (6.0, 2.5)  # diffusers' defaults (positive, negative) for refiner models

__all__ = ["OrtImg2ImgRefinerEngine", "schedule_length"]


def _ort_device(device: str) -> str:
    """Torch-style device names -> ``OrtModel`` ones (onnxruntime has no MPS provider)."""
    kind = device.split(":", 1)[0]
    if kind == "mps":
        return "cpu"
    if kind not in ("auto", "cpu", "cuda", "tensorrt"):
        raise ValueError(f"unknown device {device!r}; expected auto, cuda, mps, cpu or tensorrt")
    return device


class OrtImg2ImgRefinerEngine:
    """Refines RGB PIL images with onnxruntime; outputs have each input's size.

    Use :meth:`load`. ``graphs`` maps graph names (``text_encoder``, ``text_encoder_2`` for
    SDXL, ``unet``, ``vae_encoder``, ``vae_decoder``) to loaded :class:`OrtModel`s.
    """

    def __init__(self, graphs: dict[str, OrtModel], tokenizers: list, scheduler,
                 config: dict, *, device: str, guidance_scale: float = 0.0,
                 progress: bool = False):
        self.graphs = graphs
        self.tokenizers = tokenizers  # one per text encoder, same order
        self.scheduler = scheduler
        self.config = config  # onnx_export.json's "config": VAE scaling, pipeline flavour
        self.device = device
        self.guidance_scale = guidance_scale
        self.progress = progress  # a tqdm bar over the denoising steps

    @classmethod
    def load(cls, path, *, device: str = "auto", dtype: str = "auto", guidance_scale: float = 0.0,
             progress: bool = False, runtime: str = "onnxruntime") -> "OrtImg2ImgRefinerEngine":
        """Load a folder written by ``export_img2img``. ``device``: auto | cpu | cuda[:i] |
        tensorrt[:i] (mps runs on the CPU). ``dtype`` is checked but the graphs' own precision
        (fixed at export) is what runs. ``runtime="tensorrt"`` runs the ``.plan`` engines
        built beside the graphs."""
        from t2i_engines.onnxruntime.graph_runner import load_graph

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        folder = Path(path)
        try:
            export = json.loads((folder / MANIFEST_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{folder} has no readable {MANIFEST_NAME}: {exc}") from exc
        if export.get("kind") != "img2img":
            raise ValueError(f"{folder / MANIFEST_NAME} describes a {export.get('kind')!r} export")
        ort_device = _ort_device(device)
        graphs = {name: load_graph(folder / entry["path"], device=ort_device, runtime=runtime)
                  for name, entry in export["graphs"].items()}
        names = ["tokenizer", "tokenizer_2"] if "text_encoder_2" in graphs else ["tokenizer"]
        tokenizers = [ClipTokenizer(folder / n) for n in names]
        scheduler = load_scheduler(folder / "scheduler")
        return cls(graphs, tokenizers, scheduler, export["config"], device=ort_device,
                   guidance_scale=guidance_scale, progress=progress)

    def refine(self, images: Sequence["Image"], prompt: str, seeds: Sequence[int],
               strength: float, steps: int, *,
               on_step: StepCallback | None = None) -> list["Image"]:
        """Img2img each image with its own seed, in one batch.

        ``strength`` in (0, 1] is the fraction of the noise schedule added back; ``steps`` >= 1
        denoising steps are run. All images must share one size. ``on_step(i)`` runs after
        denoising step i (1-based); an exception it raises aborts.
        """
        num_inference_steps, size = check_refine_args(images, seeds, strength, steps)
        if size is None:
            return []
        noise = [SeededNoise(s) for s in seeds]
        pixels = self._preprocess([image.convert("RGB") for image in images])
        conds = place_constants(self.graphs["unet"],
                                self._text_conditions(prompt, len(images), pixels.shape[-2:]))
        latents, begin = self._noised_latents(pixels, num_inference_steps, strength, noise)
        latents = denoise(self.scheduler, latents, range(begin, len(self.scheduler.timesteps)),
                          self._noise_predictor(conds), guidance_scale=self.guidance_scale,
                          noise=noise, progress=self.progress, on_step=on_step)
        out = self._decode(latents)
        # The pipeline snaps sizes to the VAE's multiple; give callers back what they passed.
        return [im if im.size == size else im.resize(size) for im in out]

    # --- the pipeline's stages ------------------------------------------------------------

    def _preprocess(self, images: list) -> np.ndarray:
        """diffusers' ``VaeImageProcessor.preprocess``: floor each side to the VAE multiple
        (Lanczos resize), [0, 255] -> [-1, 1], NCHW float32."""
        from PIL import Image as PILImage

        factor = self.config["vae_scale_factor"]
        width, height = (x - x % factor for x in images[0].size)
        images = [im.resize((width, height), resample=PILImage.Resampling.LANCZOS)
                  for im in images]
        array = np.stack([np.array(im).astype(np.float32) / 255.0 for im in images])
        return 2.0 * array.transpose(0, 3, 1, 2) - 1.0

    @property
    def _guided(self) -> bool:
        return self.guidance_scale > 1.0  # diffusers' do_classifier_free_guidance

    def _encode_text(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        """One prompt -> (prompt_embeds [1, S, D], pooled [1, P] or None for SD)."""
        hidden, pooled = [], None
        for tokenizer, name in zip(self.tokenizers, ("text_encoder", "text_encoder_2")):
            ids = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="np")["input_ids"]
            out = self.graphs[name].run({"input_ids": ids.astype(np.int64)})
            hidden.append(out["hidden_states"])
            pooled = out.get("text_embeds", pooled)
        return np.concatenate(hidden, axis=-1), pooled

    def _text_conditions(self, prompt: str, batch: int, pixel_hw) -> dict[str, np.ndarray]:
        """UNet feeds besides ``sample``/``timestep``, negatives first when guided."""
        embeds, pooled = self._encode_text(prompt)
        xl = self.config["pipeline"] == "sdxl"
        conds = {"encoder_hidden_states": embeds}
        if xl:
            conds["text_embeds"] = pooled
            conds["time_ids"] = self._time_ids(pixel_hw, negative=False)
        conds = {k: np.repeat(v, batch, axis=0) for k, v in conds.items()}
        if not self._guided:
            return conds
        if xl and self.config["force_zeros_for_empty_prompt"]:
            neg_embeds, neg_pooled = np.zeros_like(embeds), np.zeros_like(pooled)
        else:
            neg_embeds, neg_pooled = self._encode_text("")
        negative = {"encoder_hidden_states": neg_embeds}
        if xl:
            negative["text_embeds"] = neg_pooled
            negative["time_ids"] = self._time_ids(pixel_hw, negative=True)
        return {k: np.concatenate([np.repeat(negative[k], batch, axis=0), v])
                for k, v in conds.items()}

    def _time_ids(self, pixel_hw, *, negative: bool) -> np.ndarray:
        """SDXL's micro-conditioning: original size, crop corner (0, 0), then the target size
        or, for refiner models, an aesthetic score. Sizes are the (snapped) input's."""
        height, width = (int(x) for x in pixel_hw)
        tail = ((AESTHETIC_SCORES[1] if negative else AESTHETIC_SCORES[0]),) \
            if self.config["requires_aesthetics_score"] else (height, width)
        return np.array([[height, width, 0, 0, *tail]], dtype=np.float32)

    def _noised_latents(self, pixels: np.ndarray, num_inference_steps: int, strength: float,
                        noise: list[SeededNoise]) -> tuple[np.ndarray, int]:
        """Encode, sample the posterior, scale, then ``add_noise`` at the first kept timestep.
        Returns (latents, index of the first step to run)."""
        self.scheduler.set_timesteps(num_inference_steps)
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        begin = max(num_inference_steps - init_timestep, 0)  # get_timesteps' t_start
        posterior = self.graphs["vae_encoder"].run({"image": pixels})
        mean, std = posterior["latent_mean"], posterior["latent_std"]
        latents = mean + std * batch_noise(noise, mean.shape[1:])  # z ~ N(μ, σ²)
        scaling = np.float32(self.config["scaling_factor"])
        latents_mean, latents_std = self._latent_stats(latents.shape[1])
        if latents_mean is not None:
            latents = (latents - latents_mean) * scaling / latents_std
        else:
            latents = scaling * latents
        start_noise = batch_noise(noise, latents.shape[1:])
        return self.scheduler.add_noise(latents.astype(np.float32), start_noise, begin), begin

    def _latent_stats(self, channels: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        mean, std = self.config.get("latents_mean"), self.config.get("latents_std")
        if mean is None or std is None:
            return None, None
        return (np.asarray(mean, np.float32).reshape(1, channels, 1, 1),
                np.asarray(std, np.float32).reshape(1, channels, 1, 1))

    def _noise_predictor(self, conds: dict):
        """``denoise``'s UNet callback; ``conds`` come from ``place_constants``. The latents
        still round-trip because the scheduler runs in numpy on the CPU; they are smaller
        than the text conditions."""
        def predict_noise(i, model_input, t):
            return run_to_host(self.graphs["unet"], {
                "sample": model_input, "timestep": timestep_batch(t, model_input.shape[0]),
                **conds})["out_sample"]
        return predict_noise

    def _decode(self, latents: np.ndarray) -> list["Image"]:
        """Unscale, decode, then ``VaeImageProcessor.postprocess`` to PIL."""
        latents_mean, latents_std = self._latent_stats(latents.shape[1])
        scaling = np.float32(self.config["scaling_factor"])
        if latents_mean is not None:
            latents = latents * latents_std / scaling + latents_mean
        else:
            latents = latents / scaling
        image = self.graphs["vae_decoder"].run({"latent": latents.astype(np.float32)})["image"]
        return to_pil_images(image)
