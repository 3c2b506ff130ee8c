"""Training batches from the shapes world: rendered 64x64 scenes, captions, and per-object
crops / phrases / boxes. Batch ``index`` of seed ``seed`` is always the same batch, so a
resumed run continues the exact data order without replaying the stream."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_sdk.layout import Box
from t2i_sdk.shapes import Scene, WorldConfig, render_scene, scene_stream

if TYPE_CHECKING:
    import torch

_SEED_STRIDE = 1_000_003  # a prime, so (seed, index) pairs never share a stream


def batch_seed(seed: int, index: int) -> int:
    """The ``scene_stream`` seed of batch ``index`` of a run seeded ``seed``."""
    return seed * _SEED_STRIDE + index


@dataclass(frozen=True)
class ObjectCrop:
    """One object's crop, resized to a square; ``image_index`` is its scene in the batch."""

    image_index: int
    phrase: str
    box: Box  # the box the crop was cut from, [0, 1]
    image: Image.Image


@dataclass(frozen=True)
class SceneBatch:
    """``scenes[i]`` rendered as ``images[i]`` (RGB, ``scene.size`` px square)."""

    scenes: tuple[Scene, ...]
    images: tuple[Image.Image, ...]

    @property
    def captions(self) -> list[str]:
        return [s.caption.prompt for s in self.scenes]

    def pixels(self) -> "torch.Tensor":
        """(B, 3, H, W) float32 in [-1, 1], as diffusers' VaeImageProcessor prepares images."""
        import torch

        arr = np.stack([np.asarray(im, dtype=np.float32) for im in self.images])
        return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0

    def crops(self, size: int, rng: np.random.Generator, jitter: float = 0.0) -> list[ObjectCrop]:
        """Every object's box crop resized to ``size`` x ``size`` (bicubic, as CLIP's processor).

        ``jitter``: each box edge moves by up to this fraction of the box side, so the scorer
        also recognises objects a draft put slightly off their planned box."""
        out = []
        for i, (scene, image) in enumerate(zip(self.scenes, self.images)):
            for obj in scene.objects:
                box = _jittered(obj.box, rng, jitter)
                crop = _crop(image, box).resize((size, size), Image.BICUBIC)
                out.append(ObjectCrop(i, obj.phrase, box, crop))
        return out

    def grounding(self) -> tuple[np.ndarray, list[list[str]]]:
        """GLIGEN inputs: boxes (B, 30, 4) float32 in [0, 1] (unused slots 0) and each scene's
        phrases, in layout order."""
        boxes = np.zeros((len(self.scenes), MAX_GLIGEN_OBJECTS, 4), dtype=np.float32)
        phrases = []
        for i, scene in enumerate(self.scenes):
            objs = scene.objects[:MAX_GLIGEN_OBJECTS]
            boxes[i, :len(objs)] = [o.box for o in objs]
            phrases.append([o.phrase for o in objs])
        return boxes, phrases


def scene_batch(seed: int, index: int, batch_size: int,
                config: WorldConfig | None = None) -> SceneBatch:
    """Batch ``index``: the first ``batch_size`` scenes of ``scene_stream(batch_seed(...))``."""
    scenes = tuple(islice(scene_stream(batch_seed(seed, index), config), batch_size))
    return SceneBatch(scenes, tuple(render_scene(s) for s in scenes))


def _jittered(box: Box, rng: np.random.Generator, jitter: float) -> Box:
    if jitter <= 0:
        return box
    w, h = box[2] - box[0], box[3] - box[1]
    d = rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
    x0, y0, x1, y1 = (float(v) for v in np.clip(np.array(box) + d, 0.0, 1.0))
    return (x0, y0, max(x1, x0 + 0.02), max(y1, y0 + 0.02))


def _crop(image: Image.Image, box: Box) -> Image.Image:
    """Pixels of a [0, 1] box, as the hybrid ranker crops (``t2i_sdk.stages.rank.crop_box``)."""
    w, h = image.size
    x0, y0 = int(box[0] * w), int(box[1] * h)
    x1, y1 = max(x0 + 1, round(box[2] * w)), max(y0 + 1, round(box[3] * h))
    return image.crop((x0, y0, min(x1, w), min(y1, h)))
