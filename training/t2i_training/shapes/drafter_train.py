"""Train the drafter: a GLIGEN-gated UNet on the VAE's latents with the epsilon loss.

Conditioning per sample: the caption through cross-attention, and the ground-truth layout's
boxes + phrase embeddings through GLIGEN's position net. So that every way the pipeline runs
the UNet is trained:
* ``caption_drop`` of samples get an empty caption AND no grounding (masks 0): exactly the
  unconditional half of classifier-free guidance in StableDiffusionGLIGENPipeline;
* ``grounding_drop`` of the others keep the caption but lose the grounding tokens;
* ``caption_only_drop`` of the others keep the grounding tokens but lose the caption, so the
  drafter learns to take each object's colour and shape from its own phrase in its box, not
  from the caption, which binds colours to shapes poorly;
* ``fuser_off`` of batches run with no GLIGEN input at all (fuser skipped): the plain
  text-to-image path, and the late steps after ``gligen_scheduled_sampling_beta``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from t2i_training.shapes.data import MAX_GLIGEN_OBJECTS, scene_batch
from t2i_training.shapes.diffusion import (Ema, TextEmbeddings, UNetSizes, build_unet,
                                           encode_latents, high_noise_weights, load_text_parts,
                                           noisy_sample, sampling_scheduler, train_scheduler)
from t2i_training.shapes.loop import LoopConfig, optimizer_step, run_loop, write_summary
from t2i_training.shapes.warm_start import warm_start_unet


@dataclass(frozen=True)
class DrafterTrainConfig:
    batch_size: int = 32
    lr: float = 1e-3  # high for a diffusion model, but the run is only ~1k steps
    warmup: int = 100
    unet: UNetSizes = field(default_factory=UNetSizes)
    caption_drop: float = 0.1
    grounding_drop: float = 0.1
    caption_only_drop: float = 0.0
    fuser_off: float = 0.15
    # Epsilon-loss weight min(max(1/SNR, 1), gamma), > 1 to favour high noise, where boxes
    # matter most. 1 = the plain epsilon loss the shipped drafter was trained with; 8 was tried
    # (bundles/shapes/TRAINING.md) and did not make the drafter follow its boxes.
    high_noise_gamma: float = 1.0
    # Box-masked fusers (t2i_engines.pytorch.gligen_box_mask): each object's grounding token
    # reaches only the visual tokens in its box. Without it this UNet ignores its boxes
    # (bundles/shapes/TRAINING.md).
    box_mask: bool = False
    ema_decay: float = 0.998
    seed: int = 3


def load_vae(vae_dir: str | Path):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(vae_dir), use_safetensors=True).eval().requires_grad_(False)


def drafter_text_parts(run_dir: Path):
    """(text encoder, tokenizer) the drafter is conditioned on: those of its own final once it
    has one (a resumed or seeded drafter keeps the text tower it was trained with, even if the
    clip stage trained on), else the CLIP stage's text tower."""
    from transformers import CLIPTextModel, CLIPTokenizer

    own = run_dir / "drafter" / "final"
    if (own / "text_encoder" / "config.json").is_file():
        encoder = CLIPTextModel.from_pretrained(str(own / "text_encoder"), use_safetensors=True)
        return encoder.eval().requires_grad_(False), CLIPTokenizer.from_pretrained(str(own / "tokenizer"))
    return load_text_parts(run_dir / "clip" / "final")


def latent_size(vae, image_size: int = 64) -> int:
    return image_size // 2 ** (len(vae.config.block_out_channels) - 1)


class _DrafterStep:
    def __init__(self, cfg: DrafterTrainConfig, unet, ema: Ema, vae, text: TextEmbeddings,
                 optimizer, generator):
        self.cfg, self.unet, self.ema, self.vae, self.text = cfg, unet, ema, vae, text
        self.optimizer, self.generator = optimizer, generator
        self.scheduler = train_scheduler()

    def _rand(self, n: int):
        import torch
        return torch.rand(n, generator=self.generator)

    def _grounding(self, batch, keep):
        """GLIGEN kwargs as the pipeline builds them; ``keep[i]`` False zeroes sample i's masks."""
        import torch

        boxes, phrases = batch.grounding()
        dim = self.text.text_encoder.config.hidden_size
        embeddings = torch.zeros(len(phrases), MAX_GLIGEN_OBJECTS, dim)
        masks = torch.zeros(len(phrases), MAX_GLIGEN_OBJECTS)
        for i, items in enumerate(phrases):
            embeddings[i, :len(items)] = self.text.phrases(items)
            masks[i, :len(items)] = float(keep[i])
        return {"gligen": {"boxes": torch.from_numpy(boxes), "positive_embeddings": embeddings,
                           "masks": masks}}

    def __call__(self, step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.cfg
        batch = scene_batch(cfg.seed, step, cfg.batch_size)
        latents = encode_latents(self.vae, batch.pixels(), self.generator)
        uncond = self._rand(len(batch.scenes)) < cfg.caption_drop
        grounded = bool(self._rand(1)[0] >= cfg.fuser_off)
        kwargs, phrases_only = None, torch.zeros_like(uncond)
        if grounded:
            keep = ~uncond & (self._rand(len(batch.scenes)) >= cfg.grounding_drop)
            kwargs = self._grounding(batch, keep.tolist())
            if cfg.caption_only_drop > 0:
                phrases_only = keep & (self._rand(len(batch.scenes)) < cfg.caption_only_drop)
        captions = ["" if u or p else c for u, p, c in
                    zip(uncond.tolist(), phrases_only.tolist(), batch.captions)]
        noisy, t, noise = noisy_sample(self.scheduler, latents, self.generator)
        pred = self.unet(noisy, t, self.text.prompts(captions), cross_attention_kwargs=kwargs).sample
        per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (high_noise_weights(self.scheduler, t, cfg.high_noise_gamma) * per_sample).mean()
        optimizer_step(self.optimizer, self.unet, loss, step, cfg.lr, cfg.warmup)
        self.ema.update(self.unet, step)
        return {"loss": loss.item(), "grounded": float(grounded), "gate": fuser_gate(self.unet)}


def fuser_gate(unet) -> float:
    """Mean tanh(alpha_attn) over GLIGEN's gated self-attention layers: how open the fuser is
    (GLIGEN's alpha starts at 0 for a pretrained UNet; ours start at 1, see ``build_unet``)."""
    from diffusers.models.attention import GatedSelfAttentionDense

    gates = [m.alpha_attn.tanh().item() for m in unet.modules()
             if isinstance(m, GatedSelfAttentionDense)]
    return sum(gates) / len(gates)


def train_drafter(run_dir: str | Path, loop: LoopConfig,
                  cfg: DrafterTrainConfig = DrafterTrainConfig()) -> dict:
    """Train (or resume) in ``run_dir/drafter`` from ``run_dir/clip/final`` and
    ``run_dir/vae/final``, warm-started from ``run_dir/drafter/final`` in a seeded run; writes
    ``run_dir/drafter/final`` (StableDiffusionGLIGENPipeline, EMA weights, DDIM trailing
    scheduler, no safety checker)."""
    import torch
    from diffusers import StableDiffusionGLIGENPipeline

    from t2i_engines.box_mask_marker import is_box_masked, mark_box_masked
    from t2i_engines.pytorch.gligen_box_mask import make_box_masked

    run_dir = Path(run_dir)
    stage_dir = run_dir / "drafter"
    text_encoder, tokenizer = drafter_text_parts(run_dir)
    vae = load_vae(run_dir / "vae" / "final")
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg.unet, latent_size(vae), text_encoder.config.hidden_size, gated=True)
    if is_box_masked(stage_dir / "final" / "unet") and not cfg.box_mask:
        raise ValueError(f"{stage_dir / 'final'} was trained box-masked; pass --box-mask to "
                         "train it on")
    if cfg.box_mask:
        make_box_masked(unet)  # same weights, so warm starts and checkpoints load as before
    ema = Ema(unet, cfg.ema_decay)
    if warm_start_unet(stage_dir, [unet, ema.model]):
        print(f"drafter: warm start from {stage_dir / 'final'}")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed)
    step_fn = _DrafterStep(cfg, unet.train(), ema, vae, TextEmbeddings(text_encoder, tokenizer),
                           optimizer, generator)
    result = run_loop("drafter", stage_dir, loop, {"unet": unet, "ema": ema.model}, optimizer,
                      generator, step_fn)
    pipe = StableDiffusionGLIGENPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=ema.model,
        scheduler=sampling_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(stage_dir / "final", safe_serialization=True)
    if cfg.box_mask:
        mark_box_masked(stage_dir / "final" / "unet")
    params = sum(p.numel() for p in unet.parameters())
    return write_summary(stage_dir, "drafter", result, {"unet_params": params, "config": asdict(cfg)})
