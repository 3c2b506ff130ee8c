"""Random-weight models with real architectures' sizes, for ``benchmarks/engines.py --real-size``.

Each builder saves one model folder (``save_pretrained`` layout) that the exporters read; the
tokenizers are the tiny ones (only ids below their vocab occur, which latency does not notice).
Builds are seeded, so a folder built twice holds the same weights.
"""
from __future__ import annotations

from pathlib import Path

import torch

TEXT_TOKENS = 77  # CLIP's padded context, used for every text-encoder case

# SD 1.x / 2.x UNet layout: 4 levels, 2 ResNets per level, cross-attention on the top three.
_SD_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_GLIGEN_UNET = dict(_SD_UNET, cross_attention_dim=768, attention_head_dim=8,
                        attention_type="gated")
# SD 2.1-base's UNet, which SD-Turbo (the 512 px sibling of SDXL-Turbo) distils
SD_TURBO_UNET = dict(_SD_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                     use_linear_projection=True)
SD_TURBO_UNET_PARAMS = 865_910_724  # measured: UNet2DConditionModel(**SD_TURBO_UNET)

# CLIP text towers: CLIP ViT-L/14's (SD 1.5's encoder) and OpenCLIP ViT-H/14's as SD 2.x
# ships it (its last layer dropped: SD 2 conditions on the penultimate one, layer-normed).
CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu")
OPENCLIP_H_TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                       num_attention_heads=16, projection_dim=1024, hidden_act="gelu")


def clip_text_config(tokenizer, sizes: dict = CLIP_L_TEXT):
    """A CLIP text tower of ``sizes`` with the real 49408-id vocab and 77-token context."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408, max_position_embeddings=TEXT_TOKENS, **sizes,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def sd_vae():
    """SD's VAE (1.x and 2.x share it): (128, 256, 512, 512), 4 latent channels, factor 8."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=512, scaling_factor=0.18215)


def _save_sd_pipeline(out: Path, pipeline_class, unet: dict, text: dict, scheduler,
                      seed: int) -> Path:
    """A random SD-layout pipeline (text encoder of ``text`` sizes, UNet of ``unet``, SD VAE,
    tiny tokenizer, no safety checker) saved into ``out``."""
    from diffusers import UNet2DConditionModel
    from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(train_clip_tokenizer(out / "tokenizer"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(clip_text_config(tokenizer, text))
        unet_model = UNet2DConditionModel(**unet)
        vae = sd_vae()
    pipeline_class(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet_model,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(out)
    return out


def build_sd15_gligen(out: Path) -> Path:
    """A random StableDiffusionGLIGENPipeline with SD 1.5's UNet (+ GLIGEN fusers), CLIP-L
    text encoder and VAE sizes."""
    from diffusers import DDIMScheduler, StableDiffusionGLIGENPipeline

    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return _save_sd_pipeline(out, StableDiffusionGLIGENPipeline, SD15_GLIGEN_UNET, CLIP_L_TEXT,
                             scheduler, seed=0)


def build_sd_turbo(out: Path) -> Path:
    """A random StableDiffusionPipeline of SD-Turbo's sizes (SD 2.1-base UNet, OpenCLIP-H
    text encoder, SD VAE) with its trailing-spacing Euler scheduler; loads with
    ``AutoPipelineForImage2Image`` and exports with ``export_img2img`` (pipeline "sd")."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1)
    return _save_sd_pipeline(out, StableDiffusionPipeline, SD_TURBO_UNET, OPENCLIP_H_TEXT,
                             scheduler, seed=3)


def build_clip_vit_l14(out: Path) -> Path:
    """A random CLIPModel of ViT-L/14's sizes with a 224 px image processor."""
    from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer, CLIPVisionConfig
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = CLIPTokenizer.from_pretrained(train_clip_tokenizer(out))
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                              num_attention_heads=16, image_size=224, patch_size=14,
                              projection_dim=768, hidden_act="quick_gelu")
    config = CLIPConfig(text_config=clip_text_config(tokenizer).to_dict(),
                        vision_config=vision.to_dict(), projection_dim=768)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        CLIPModel(config).save_pretrained(out, safe_serialization=True)
    processor = CLIPImageProcessorPil(size={"shortest_edge": 224},
                                      crop_size={"height": 224, "width": 224})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_qwen2_05b(out: Path) -> Path:
    """A random Qwen2ForCausalLM of Qwen2.5-0.5B's sizes (real 151936-id vocab, tied
    embeddings) with the tiny chat tokenizer; the GGUF exporter pads the vocab."""
    from t2i_engines.pytorch.tiny.llm_tokenizer import train_llm_tokenizer
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(train_llm_tokenizer(out))
    config = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        Qwen2ForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out
