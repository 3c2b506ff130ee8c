"""What the drafter and refiner stages share: UNet sizes, schedulers, a frozen-text-encoder
embedding cache, the epsilon loss and an EMA of weights."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LATENT_CHANNELS = 4  # StableDiffusionGLIGENPipeline assumes 4 latent channels
TRAIN_TIMESTEPS = 1000
# Stable Diffusion's noise schedule, so the saved schedulers are the familiar ones.
BETA_KW = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


@dataclass(frozen=True)
class UNetSizes:
    """Self/cross attention (and GLIGEN's fuser) only at the lower resolution: the 16x16 level
    is convolutions only, which keeps a step cheap on CPU. ``channels`` sets the levels (a
    third level, 32,64,64, was tried for position cues from the 4x4 level's zero padding and
    did not make the drafter follow its boxes: bundles/shapes/TRAINING.md)."""

    channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    head_dim: int = 16
    norm_groups: int = 8


def build_unet(sizes: UNetSizes, sample_size: int, cross_attention_dim: int, gated: bool):
    """``UNet2DConditionModel``; ``gated`` adds GLIGEN's position net and gated self-attention
    (gates opened to 1: trained from scratch, there is no pretrained behaviour to protect)."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention import GatedSelfAttentionDense

    n = len(sizes.channels)
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        block_out_channels=sizes.channels, layers_per_block=sizes.layers_per_block,
        norm_num_groups=sizes.norm_groups, attention_head_dim=sizes.head_dim,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim,
        **({"attention_type": "gated"} if gated else {}))
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, GatedSelfAttentionDense):
                module.alpha_attn.fill_(1.0)
                module.alpha_dense.fill_(1.0)
    return unet


def train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, **BETA_KW)


def sampling_scheduler():
    """DDIM with "trailing" spacing: a few-step run still starts from pure noise (t = 999)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, timestep_spacing="trailing",
                         **BETA_KW)


def load_text_parts(clip_dir: str | Path):
    """(CLIPTextModel, CLIPTokenizer) from a trained CLIP folder: the CLIP text tower with
    exactly its weights, frozen, as the diffusion models' text encoder."""
    from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

    clip = CLIPModel.from_pretrained(str(clip_dir), use_safetensors=True)
    text_encoder = CLIPTextModel(clip.config.text_config)
    # transformers 5: CLIPModel.text_model *is* a CLIPTextModel, so the keys match one to one.
    text_encoder.load_state_dict(clip.text_model.state_dict())
    text_encoder.eval().requires_grad_(False)
    return text_encoder, CLIPTokenizer.from_pretrained(str(clip_dir))


class TextEmbeddings:
    """Cached frozen-encoder outputs, computed exactly as the diffusers pipelines do:
    prompts padded to ``model_max_length`` without an attention mask (last hidden state), and
    GLIGEN phrases as the pooled output."""

    def __init__(self, text_encoder, tokenizer):
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self._prompts: dict[str, torch.Tensor] = {}
        self._phrases: dict[str, torch.Tensor] = {}

    def prompts(self, texts: list[str]) -> "torch.Tensor":
        """(B, model_max_length, hidden)."""
        import torch

        missing = [t for t in dict.fromkeys(texts) if t not in self._prompts]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", truncation=True,
                                 max_length=self.tokenizer.model_max_length,
                                 return_tensors="pt").input_ids
            with torch.no_grad():
                hidden = self.text_encoder(ids)[0]
            self._prompts.update(zip(missing, hidden))
        return torch.stack([self._prompts[t] for t in texts])

    def phrases(self, texts: list[str]) -> "torch.Tensor":
        """(n, hidden) pooled embeddings; each phrase encoded alone (the causal mask makes the
        pooled token independent of padding, so this equals the pipeline's padded batch)."""
        import torch

        for text in dict.fromkeys(texts):
            if text not in self._phrases:
                ids = self.tokenizer([text], return_tensors="pt").input_ids
                with torch.no_grad():
                    self._phrases[text] = self.text_encoder(ids).pooler_output[0]
        if not texts:
            return torch.zeros(0, self.text_encoder.config.hidden_size)
        return torch.stack([self._phrases[t] for t in texts])


def encode_latents(vae, pixels: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
    """Scaled VAE latents (B, 4, H/4, W/4), sampled from the posterior as img2img does."""
    import torch

    with torch.no_grad():
        dist = vae.encode(pixels).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator)
        return (dist.mean + dist.std * noise) * vae.config.scaling_factor


def noisy_sample(scheduler, latents, generator, t_max: int = TRAIN_TIMESTEPS):
    """(noisy latents, timesteps, noise) with t uniform in [0, t_max)."""
    import torch

    t = torch.randint(0, t_max, (latents.shape[0],), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    return scheduler.add_noise(latents, noise, t), t, noise


def high_noise_weights(scheduler, t: "torch.Tensor", gamma: float) -> "torch.Tensor":
    """Per-sample weights of the epsilon loss that favour high noise, where a layout decides
    where things go. For epsilon prediction, |x0 error|^2 = |eps error|^2 / SNR(t) with
    SNR = alpha_bar / (1 - alpha_bar) (DDPM, Ho et al. 2020, eq. 4), so weighting by 1/SNR is
    the x0 loss; clipped to [1, gamma] so low-noise steps keep their full epsilon weight and
    t -> 1000 cannot explode. gamma <= 1 gives the plain epsilon loss."""
    import torch

    alpha_bar = scheduler.alphas_cumprod.to(t.device)[t]
    return torch.clamp((1 - alpha_bar) / alpha_bar, min=1.0, max=max(1.0, gamma))


class Ema:
    """Exponential moving average of a model's weights, with warm-up so a short run's average
    is not dominated by its random initialisation: decay_t = min(decay, (1 + t) / (10 + t))."""

    def __init__(self, model, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    def update(self, model, step: int) -> None:
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema_p, p in zip(self.model.parameters(), model.parameters()):
                ema_p.lerp_(p.detach(), 1 - d)
