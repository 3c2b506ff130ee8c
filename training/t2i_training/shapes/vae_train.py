"""Train the autoencoder: ``AutoencoderKL`` 64x64x3 -> 16x16x4 (3 levels, factor 4).

It has no mid-block attention, so it is fully convolutional and trains on random crops (4x
cheaper than whole images) with exactly the weights it runs with on whole ones. Loss: L1 + L2
reconstruction plus a small per-element KL. ``scaling_factor`` is set afterwards to 1 / std of
posterior-sampled latents of whole scenes (Stable Diffusion's recipe).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from t2i_training.shapes.data import scene_batch
from t2i_training.shapes.checkpoints import latest_checkpoint
from t2i_training.shapes.loop import LoopConfig, optimizer_step, run_loop, write_summary


@dataclass(frozen=True)
class VaeTrainConfig:
    batch_size: int = 32
    crop: int = 32  # train on random crops this many px square; 0 = whole images
    lr: float = 1e-3
    warmup: int = 100
    channels: tuple[int, ...] = (16, 32, 32)
    norm_groups: int = 8
    kl_weight: float = 1e-4  # on the KL averaged per latent element
    calibration_images: int = 256
    decoder_only: bool = False  # fine-tune run_dir/vae/final's decoder; latents stay as they are
    seed: int = 2


def build_vae(cfg: VaeTrainConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=cfg.channels,
        layers_per_block=1, norm_num_groups=cfg.norm_groups, sample_size=64,
        mid_block_add_attention=False, force_upcast=False,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n)


def _random_crops(pixels, size: int, generator):
    import torch

    if size <= 0 or size >= pixels.shape[-1]:
        return pixels
    top = torch.randint(0, pixels.shape[-2] - size + 1, (pixels.shape[0],), generator=generator)
    left = torch.randint(0, pixels.shape[-1] - size + 1, (pixels.shape[0],), generator=generator)
    return torch.stack([p[:, y:y + size, x:x + size] for p, y, x in zip(pixels, top, left)])


class _VaeStep:
    def __init__(self, cfg: VaeTrainConfig, vae, optimizer, generator):
        self.cfg, self.vae, self.optimizer, self.generator = cfg, vae, optimizer, generator

    def __call__(self, step: int) -> dict[str, float]:
        import torch

        cfg = self.cfg
        x = _random_crops(scene_batch(cfg.seed, step, cfg.batch_size).pixels(), cfg.crop,
                          self.generator)
        posterior = self.vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=self.generator)
        recon = self.vae.decode(z).sample
        l1, l2 = (recon - x).abs().mean(), (recon - x).pow(2).mean()
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = l1 + l2 + cfg.kl_weight * kl
        optimizer_step(self.optimizer, self.vae, loss, step, cfg.lr, cfg.warmup)
        return {"loss": loss.item(), "l1": l1.item(), "kl": kl.item()}


def heldout_l1(vae, cfg: VaeTrainConfig) -> float:
    """Mean |decode(encode mean) - x| in [0, 1] units over the held-aside calibration scenes."""
    import torch

    x = scene_batch(cfg.seed + 1000, 0, cfg.calibration_images).pixels()
    with torch.no_grad():
        recon = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    return (recon - x).abs().mean().item() / 2


def calibrate_scaling(vae, cfg: VaeTrainConfig) -> tuple[float, float]:
    """Set ``scaling_factor`` = 1 / std of sampled latents of whole held-aside scenes (seed
    ``cfg.seed + 1000``, never trained on). Returns (scaling_factor, mean L1 in [0, 1] units)."""
    import torch

    x = scene_batch(cfg.seed + 1000, 0, cfg.calibration_images).pixels()
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=generator)
    factor = round(1.0 / z.std().item(), 5)
    vae.register_to_config(scaling_factor=factor)
    return factor, heldout_l1(vae, cfg)


def decoder_parameters(vae) -> list:
    """What a decoder-only fine-tune trains: the decoder and the conv before it. The encoder and
    ``quant_conv`` stay frozen, so every latent the drafter was trained on keeps its meaning."""
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    return [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]


def train_vae(run_dir: str | Path, loop: LoopConfig, cfg: VaeTrainConfig = VaeTrainConfig()) -> dict:
    """Train (or resume) in ``run_dir/vae``; writes ``run_dir/vae/final`` (AutoencoderKL).
    With ``cfg.decoder_only`` it starts from the existing final and keeps its scaling factor."""
    import torch
    from diffusers import AutoencoderKL

    stage_dir = Path(run_dir) / "vae"
    torch.manual_seed(cfg.seed)
    if cfg.decoder_only:
        if not (stage_dir / "final" / "config.json").is_file():
            raise FileNotFoundError(f"{stage_dir / 'final'}: decoder-only needs a trained VAE "
                                    "(train the vae stage or seed the run with init first)")
        vae = AutoencoderKL.from_pretrained(str(stage_dir / "final"), use_safetensors=True).train()
        params = decoder_parameters(vae)
    else:
        if (stage_dir / "final").is_dir() and latest_checkpoint(stage_dir) is None:
            raise FileExistsError(f"{stage_dir / 'final'}: a trained VAE is there (a seeded run?); "
                                  "a new one would change the latents the drafter was trained on: "
                                  "use --decoder-only, or a new run dir")
        vae = build_vae(cfg).train()
        params = list(vae.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed)
    result = run_loop("vae", stage_dir, loop, {"vae": vae}, optimizer, generator,
                      _VaeStep(cfg, vae, optimizer, generator))
    vae.eval()
    if cfg.decoder_only:
        factor, l1 = vae.config.scaling_factor, heldout_l1(vae, cfg)
    else:
        factor, l1 = calibrate_scaling(vae, cfg)
    vae.save_pretrained(stage_dir / "final", safe_serialization=True)
    params = sum(p.numel() for p in vae.parameters())
    return write_summary(stage_dir, "vae", result, {
        "params": params, "scaling_factor": factor, "heldout_l1": round(l1, 5),
        "config": asdict(cfg)})
