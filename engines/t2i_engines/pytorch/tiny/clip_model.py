"""A tiny random CLIP: the real ``CLIPModel`` (text + vision towers) at toy size.

Its embeddings mean nothing, but they exercise the same loading, preprocessing and projection
code as ``openai/clip-vit-*`` checkpoints, in milliseconds on a CPU.
"""
from __future__ import annotations

from pathlib import Path

from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer

IMAGE_SIZE = 32  # pixels; the image processor resizes + centre-crops to this square
PATCH_SIZE = 8
HIDDEN_SIZE = 32
INTERMEDIATE_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 4
PROJECTION_DIM = 32  # the shared embedding width d
MAX_TEXT_TOKENS = 77  # as in every released CLIP


def _config(tokenizer):
    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig

    tower = dict(hidden_size=HIDDEN_SIZE, intermediate_size=INTERMEDIATE_SIZE,
                 num_hidden_layers=NUM_LAYERS, num_attention_heads=NUM_HEADS)
    text = CLIPTextConfig(
        vocab_size=len(tokenizer), max_position_embeddings=MAX_TEXT_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=PROJECTION_DIM, **tower)
    vision = CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
                              projection_dim=PROJECTION_DIM, **tower)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                      projection_dim=PROJECTION_DIM)


def _processor(tokenizer):
    # The PIL-backend class: CLIPImageProcessor itself needs torchvision in transformers 5 and
    # warns when it falls back. Saved configs load with either backend.
    from transformers import CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_tiny_clip(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random ``CLIPModel`` + ``CLIPProcessor`` (tokenizer + image processor) to ``out_dir``.

    Weights are a function of ``seed`` only; embeddings are ``PROJECTION_DIM``-wide, images are
    ``IMAGE_SIZE`` px square, texts at most ``MAX_TEXT_TOKENS`` tokens. Returns ``out_dir``.
    """
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    out = Path(out_dir)
    tokenizer = CLIPTokenizer.from_pretrained(
        train_clip_tokenizer(out, model_max_length=MAX_TEXT_TOKENS))
    # Seed a private generator state so building a model leaves the caller's RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(_config(tokenizer))
    model.save_pretrained(out, safe_serialization=True)
    _processor(tokenizer).save_pretrained(out)
    return out
