"""Train the scorer: a small ``CLIPModel`` contrastive on image<->caption and crop<->phrase.

Both losses matter at run time: the hybrid ranker scores whole drafts against the prompt and
each layout box's crop against its phrase. Its text tower is also the drafter's text encoder.
Texts repeat inside a batch ("a circle"), so the loss treats every image of a text as a
positive for it instead of as a false negative.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from t2i_training.shapes.data import scene_batch
from t2i_training.shapes.loop import LoopConfig, optimizer_step, run_loop, write_summary


@dataclass(frozen=True)
class ClipTrainConfig:
    """Model sizes and optimisation. Images are ``image_size`` px square, texts at most
    ``max_text_tokens`` tokens; embeddings are ``projection_dim`` wide."""

    batch_size: int = 64  # scenes per step; each adds 1-4 object crops
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 64
    vision_layers: int = 3
    text_hidden: int = 64  # also the drafter's cross-attention width
    text_layers: int = 3
    heads: int = 4
    projection_dim: int = 64
    max_text_tokens: int = 32
    vocab_size: int = 1000
    crop_jitter: float = 0.08  # fraction of a box side each crop edge may move
    crop_weight: float = 1.0  # weight of the crop<->phrase loss next to image<->caption
    seed: int = 1


def build_clip(cfg: ClipTrainConfig, tokenizer):
    """A randomly initialised ``CLIPModel`` sized by ``cfg`` for ``tokenizer``."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_hidden,
        intermediate_size=4 * cfg.text_hidden, num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.heads, max_position_embeddings=cfg.max_text_tokens,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=cfg.projection_dim)
    vision = CLIPVisionConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.vision_hidden,
        intermediate_size=4 * cfg.vision_hidden, num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.heads, projection_dim=cfg.projection_dim)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                        projection_dim=cfg.projection_dim)
    return CLIPModel(config)


def build_processor(cfg: ClipTrainConfig, tokenizer):
    """CLIPProcessor with the PIL image backend (transformers 5's default class needs
    torchvision); the saved config loads with either backend."""
    from transformers import CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    size = cfg.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size},
                                            crop_size={"height": size, "width": size})
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def contrastive_loss(image_emb, text_emb, labels, logit_scale):
    """Symmetric InfoNCE with repeated texts: ``image_emb`` (N, d) and ``text_emb`` (U, d) are
    L2-normalised, ``labels`` (N,) maps each image to its text row. Text->image targets are
    uniform over all images of that text. Returns (loss, image->text top-1 accuracy)."""
    import torch
    import torch.nn.functional as F

    logits = logit_scale * image_emb @ text_emb.T  # (N, U)
    loss_i = F.cross_entropy(logits, labels)
    target = F.one_hot(labels, text_emb.shape[0]).T.float()  # (U, N)
    target = target / target.sum(1, keepdim=True).clamp_min(1.0)
    loss_t = -(target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    accuracy = (logits.argmax(1) == labels).float().mean()
    return (loss_i + loss_t) / 2, accuracy


def _unique(texts: list[str]) -> tuple[list[str], list[int]]:
    order = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(order)}
    return order, [index[t] for t in texts]


class _ClipStep:
    """One optimisation step on batch ``step`` (data indexed by step, so resumes are exact)."""

    def __init__(self, cfg: ClipTrainConfig, model, processor, optimizer):
        self.cfg, self.model, self.processor, self.optimizer = cfg, model, processor, optimizer

    def _embed_images(self, images):
        pixels = self.processor.image_processor(images=list(images), return_tensors="pt")
        out = self.model.vision_model(pixel_values=pixels["pixel_values"])
        return self.model.visual_projection(out.pooler_output)

    def _embed_texts(self, texts):
        enc = self.processor.tokenizer(texts, padding=True, truncation=True,
                                       max_length=self.cfg.max_text_tokens, return_tensors="pt")
        out = self.model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        return self.model.text_projection(out.pooler_output)

    def __call__(self, step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.cfg
        batch = scene_batch(cfg.seed, step, cfg.batch_size)
        crops = batch.crops(cfg.image_size, np.random.default_rng([cfg.seed, step]), cfg.crop_jitter)
        captions, cap_labels = _unique(batch.captions)
        phrases, phr_labels = _unique([c.phrase for c in crops])
        image_emb = F.normalize(self._embed_images(list(batch.images) + [c.image for c in crops]), dim=-1)
        text_emb = F.normalize(self._embed_texts(captions + phrases), dim=-1)
        scale = self.model.logit_scale.exp().clamp(max=100.0)
        n, k = len(batch.images), len(captions)
        scene_loss, scene_acc = contrastive_loss(image_emb[:n], text_emb[:k],
                                                 torch.tensor(cap_labels), scale)
        crop_loss, crop_acc = contrastive_loss(image_emb[n:], text_emb[k:],
                                               torch.tensor(phr_labels), scale)
        loss = scene_loss + cfg.crop_weight * crop_loss
        optimizer_step(self.optimizer, self.model, loss, step, cfg.lr, cfg.warmup)
        return {"loss": loss.item(), "scene_acc": scene_acc.item(), "crop_acc": crop_acc.item()}


def train_clip(run_dir: str | Path, loop: LoopConfig,
               cfg: ClipTrainConfig = ClipTrainConfig()) -> dict:
    """Train (or resume) the CLIP stage in ``run_dir/clip`` (warm-started from its final in a
    seeded run, whose tokenizer it keeps); writes ``run_dir/clip/final``
    (``CLIPModel.from_pretrained`` + ``AutoProcessor`` loadable). Returns the stage summary."""
    import torch
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer
    from t2i_training.shapes.checkpoints import latest_checkpoint

    stage_dir = Path(run_dir) / "clip"
    final = stage_dir / "final"
    warm = latest_checkpoint(stage_dir) is None and (final / "model.safetensors").is_file()
    if warm or (final / "tokenizer.json").is_file():  # a seeded run keeps its vocabulary
        tokenizer = CLIPTokenizer.from_pretrained(str(final))
    else:
        tokenizer = CLIPTokenizer.from_pretrained(train_clip_tokenizer(
            stage_dir / "tokenizer", vocab_size=cfg.vocab_size, model_max_length=cfg.max_text_tokens))
    torch.manual_seed(cfg.seed)
    model = build_clip(cfg, tokenizer).train()
    if warm:  # a seeded run: go on from the bundle's scorer
        model.load_state_dict(load_file(final / "model.safetensors"))
        print(f"clip: warm start from {final}")
    processor = build_processor(cfg, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    result = run_loop("clip", stage_dir, loop, {"model": model}, optimizer, generator,
                      _ClipStep(cfg, model, processor, optimizer))
    model.eval().save_pretrained(final, safe_serialization=True)
    processor.save_pretrained(final)
    params = sum(p.numel() for p in model.parameters())
    return write_summary(stage_dir, "clip", result, {"params": params, "config": asdict(cfg)})
