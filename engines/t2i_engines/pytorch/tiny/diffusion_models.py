"""Tiny random-weight diffusion pipelines with the real architectures, saved like Hub models.

``build_tiny_gligen`` writes a ``StableDiffusionGLIGENPipeline`` (gated UNet with a GLIGEN
position net) and ``build_tiny_refiner`` an SDXL-Turbo-style ``StableDiffusionXLPipeline``.
Both make 64x64 images (VAE scale factor 2, latents 4x32x32) and take milliseconds per step on
CPU. Weights are random, so the images are noise-like; what matters is that every code path of
the real models runs. Builds are deterministic: the same seed writes the same safetensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer

IMAGE_SIZE = 64  # pixels, square
LATENT_CHANNELS = 4


@dataclass(frozen=True)
class TinySizes:
    """Widths of the tiny models; channel counts must be multiples of ``norm_groups``."""

    vocab_size: int = 1000
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 4
    unet_channels: tuple[int, int] = (16, 32)
    vae_channels: tuple[int, int] = (8, 16)
    norm_groups: int = 8
    head_dim: int = 8


SIZES = TinySizes()


def _tokenizer(out: Path):
    from transformers import CLIPTokenizer

    folder = train_clip_tokenizer(out / "tokenizer", vocab_size=SIZES.vocab_size)
    return CLIPTokenizer.from_pretrained(folder)


def _text_config(tokenizer, projection_dim: int | None = None):
    from transformers import CLIPTextConfig

    extra = {} if projection_dim is None else {"projection_dim": projection_dim}
    return CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=SIZES.text_hidden,
        intermediate_size=2 * SIZES.text_hidden, num_hidden_layers=SIZES.text_layers,
        num_attention_heads=SIZES.text_heads, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **extra)


def _vae(seed: int):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    n = len(SIZES.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS,
        block_out_channels=SIZES.vae_channels, layers_per_block=1,
        norm_num_groups=SIZES.norm_groups, sample_size=IMAGE_SIZE,
        force_upcast=False,  # with True, SDXL pipelines re-cast the VAE to fp32 on every call
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n)
    _calibrate_vae(vae, seed)
    return vae


def _calibrate_vae(vae, seed: int) -> None:
    """Give the random VAE two properties every trained one has, so img2img behaves sanely:
    a near-deterministic posterior (random init gives std ~1, drowning the latent mean) and a
    ``scaling_factor`` that makes latents unit-variance (SD's recipe for choosing it)."""
    import torch

    with torch.no_grad():
        logvar_weight, logvar_bias = (p[LATENT_CHANNELS:] for p in
                                      (vae.quant_conv.weight, vae.quant_conv.bias))
        logvar_weight.zero_()
        logvar_bias.fill_(-30.0)  # the floor DiagonalGaussianDistribution clamps to
        images = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE,
                            generator=torch.Generator().manual_seed(seed)) * 2 - 1
        latent_std = vae.encode(images).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=round(1.0 / latent_std, 4))


def _unet(seed: int, cross_attention_dim: int, **arch):
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    vae_scale = 2 ** (len(SIZES.vae_channels) - 1)
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // vae_scale, in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS, block_out_channels=SIZES.unet_channels, layers_per_block=1,
        norm_num_groups=SIZES.norm_groups, attention_head_dim=SIZES.head_dim,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, **arch)


def _open_gligen_gates(unet, value: float = 1.0) -> None:
    """GLIGEN initialises its gates to 0 (tanh(0) = 0: boxes have no effect). A trained model
    has open gates, so open them here too, or the tiny model would never exercise grounding."""
    import torch
    from diffusers.models.attention import GatedSelfAttentionDense

    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, GatedSelfAttentionDense):
                module.alpha_attn.fill_(value)
                module.alpha_dense.fill_(value)


def build_tiny_gligen(out_dir, *, seed: int = 0) -> Path:
    """Save a tiny random ``StableDiffusionGLIGENPipeline`` (64x64 images) into ``out_dir``.

    Components: gated ``UNet2DConditionModel``, ``AutoencoderKL``, ``CLIPTextModel``, the tiny
    CLIP tokenizer and a ``DDIMScheduler``; no safety checker. Returns ``out_dir`` as a Path.
    """
    import torch
    from diffusers import DDIMScheduler, StableDiffusionGLIGENPipeline
    from transformers import CLIPTextModel

    out = Path(out_dir)
    tokenizer = _tokenizer(out)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    unet = _unet(seed + 1, SIZES.text_hidden, attention_type="gated")
    _open_gligen_gates(unet)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionGLIGENPipeline(
        vae=_vae(seed + 2), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out


def build_tiny_refiner(out_dir, *, seed: int = 0) -> Path:
    """Save a tiny random SDXL-Turbo-style ``StableDiffusionXLPipeline`` into ``out_dir``.

    Two text encoders (``CLIPTextModel`` + ``CLIPTextModelWithProjection``), a UNet with
    ``addition_embed_type="text_time"`` and an ``EulerAncestralDiscreteScheduler`` with
    ``timestep_spacing="trailing"`` as sdxl-turbo ships. Loads with
    ``diffusers.AutoPipelineForImage2Image.from_pretrained``. Returns ``out_dir`` as a Path.
    """
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    out = Path(out_dir)
    tokenizer = tokenizer_2 = _tokenizer(out)  # save_pretrained writes a copy per folder
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    torch.manual_seed(seed + 1)
    projection_dim = SIZES.text_hidden
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2, projection_dim))
    time_embed_dim = 8
    # SDXL conditions on 6 size/crop numbers, each Fourier-embedded, plus the pooled text.
    unet = _unet(seed + 2, 2 * SIZES.text_hidden, addition_embed_type="text_time",
                 addition_time_embed_dim=time_embed_dim, use_linear_projection=True,
                 projection_class_embeddings_input_dim=6 * time_embed_dim + projection_dim)
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionXLPipeline(
        vae=_vae(seed + 3), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
        add_watermarker=False)
    pipe.save_pretrained(out)
    return out
