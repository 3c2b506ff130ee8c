"""Train the refiner: a plain Stable Diffusion layout (UNet without GLIGEN, the drafter's VAE
and frozen text encoder) that ``AutoPipelineForImage2Image`` loads as img2img.

Its UNet starts from the drafter's EMA weights minus the GLIGEN fuser and position net (the
remaining tensors have identical names and shapes), then is fine-tuned only on timesteps below
``t_max``: img2img at strength s starts from t ~ s * 1000, and the refiner runs at s <= 0.6.
It runs without classifier-free guidance (guidance_scale 0), so captions are dropped only
rarely, for robustness to empty prompts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from t2i_training.shapes.data import scene_batch
from t2i_training.shapes.diffusion import (Ema, TextEmbeddings, encode_latents, noisy_sample,
                                           sampling_scheduler, train_scheduler)
from t2i_training.shapes.loop import LoopConfig, optimizer_step, run_loop, write_summary
from t2i_training.shapes.warm_start import warm_start_unet

GLIGEN_ONLY = ("position_net.", ".fuser.")  # parameter names a plain UNet does not have


@dataclass(frozen=True)
class RefinerTrainConfig:
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 50
    t_max: int = 600  # train timesteps uniform in [0, t_max)
    caption_drop: float = 0.05
    ema_decay: float = 0.995
    seed: int = 4


def plain_unet_from_gligen(gligen_unet):
    """A ``UNet2DConditionModel`` with ``gligen_unet``'s config minus GLIGEN, carrying every
    weight of it except the fuser and position net."""
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in gligen_unet.config.items() if not k.startswith("_")}
    config["attention_type"] = "default"
    unet = UNet2DConditionModel.from_config(config)
    weights = {k: v for k, v in gligen_unet.state_dict().items()
               if not any(part in k for part in GLIGEN_ONLY)}
    missing, unexpected = unet.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"drafter UNet does not map onto a plain UNet: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return unet


class _RefinerStep:
    def __init__(self, cfg: RefinerTrainConfig, unet, ema, vae, text, optimizer, generator):
        self.cfg, self.unet, self.ema, self.vae, self.text = cfg, unet, ema, vae, text
        self.optimizer, self.generator = optimizer, generator
        self.scheduler = train_scheduler()

    def __call__(self, step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.cfg
        batch = scene_batch(cfg.seed, step, cfg.batch_size)
        latents = encode_latents(self.vae, batch.pixels(), self.generator)
        drop = (torch.rand(len(batch.scenes), generator=self.generator) < cfg.caption_drop).tolist()
        captions = ["" if d else c for d, c in zip(drop, batch.captions)]
        noisy, t, noise = noisy_sample(self.scheduler, latents, self.generator, cfg.t_max)
        loss = F.mse_loss(self.unet(noisy, t, self.text.prompts(captions)).sample, noise)
        optimizer_step(self.optimizer, self.unet, loss, step, cfg.lr, cfg.warmup)
        self.ema.update(self.unet, step)
        return {"loss": loss.item()}


def train_refiner(run_dir: str | Path, loop: LoopConfig,
                  cfg: RefinerTrainConfig = RefinerTrainConfig()) -> dict:
    """Train (or resume) in ``run_dir/refiner`` from ``run_dir/drafter/final`` (from
    ``run_dir/refiner/final`` in a seeded run); writes
    ``run_dir/refiner/final`` (StableDiffusionPipeline, no safety checker)."""
    import torch
    from diffusers import StableDiffusionGLIGENPipeline, StableDiffusionPipeline

    run_dir = Path(run_dir)
    stage_dir = run_dir / "refiner"
    drafter = StableDiffusionGLIGENPipeline.from_pretrained(
        str(run_dir / "drafter" / "final"), use_safetensors=True, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    vae, text_encoder = drafter.vae.requires_grad_(False), drafter.text_encoder.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    unet = plain_unet_from_gligen(drafter.unet)
    ema = Ema(unet, cfg.ema_decay)
    if warm_start_unet(stage_dir, [unet, ema.model]):  # a seeded run: go on from its refiner
        print(f"refiner: warm start from {stage_dir / 'final'}")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed)
    step_fn = _RefinerStep(cfg, unet.train(), ema, vae,
                           TextEmbeddings(text_encoder, drafter.tokenizer), optimizer, generator)
    result = run_loop("refiner", stage_dir, loop, {"unet": unet, "ema": ema.model}, optimizer,
                      generator, step_fn)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=drafter.tokenizer, unet=ema.model,
        scheduler=sampling_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(stage_dir / "final", safe_serialization=True)
    params = sum(p.numel() for p in unet.parameters())
    return write_summary(stage_dir, "refiner", result, {"unet_params": params, "config": asdict(cfg)})
