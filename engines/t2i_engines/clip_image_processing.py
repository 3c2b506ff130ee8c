"""CLIP's image preprocessing in numpy + PIL (no transformers, no torch), as transformers'
``CLIPImageProcessor`` does it on its PIL path: RGB, resize the shortest edge (bicubic),
centre crop, rescale to [0, 1], normalise by the channel mean/std, NCHW float32."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


class ClipImageProcessor:
    def __init__(self, config: dict):
        try:
            self.shortest_edge = int(config["size"]["shortest_edge"])
            self.crop = (int(config["crop_size"]["height"]), int(config["crop_size"]["width"]))
            self.mean = np.asarray(config["image_mean"], np.float32).reshape(1, 1, 3)
            self.std = np.asarray(config["image_std"], np.float32).reshape(1, 1, 3)
            self.resample = int(config.get("resample", Image.Resampling.BICUBIC))
            self.rescale = float(config.get("rescale_factor", 1 / 255))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"CLIP image processor config: missing or bad field {exc}") from exc
        for flag in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
            if config.get(flag, True) is not True:
                raise ValueError(f"CLIP image processor config: {flag}=false is not supported")

    @classmethod
    def from_folder(cls, folder: str | Path) -> ClipImageProcessor:
        """From ``processor_config.json`` (its ``image_processor``) or
        ``preprocessor_config.json``, whichever the folder has."""
        folder = Path(folder)
        for name in PROCESSOR_FILES:
            path = folder / name
            if path.is_file():
                try:
                    config = json.loads(path.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise ValueError(f"{path}: not JSON: {exc}") from exc
                return cls(config.get("image_processor", config))
        raise ValueError(f"{folder}: no {' or '.join(PROCESSOR_FILES)}")

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """[n, 3, crop_h, crop_w] float32 pixel values."""
        return np.stack([self._one(im) for im in images]).astype(np.float32)

    def _one(self, image: Image.Image) -> np.ndarray:
        image = image.convert("RGB")
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)  # PIL (w, h)
        image = image.resize(size, resample=self.resample)
        pixels = np.asarray(image, dtype=np.float32)
        ch, cw = self.crop
        top, left = (pixels.shape[0] - ch) // 2, (pixels.shape[1] - cw) // 2
        if top < 0 or left < 0:
            pixels = self._pad_to_crop(pixels)
            top, left = (pixels.shape[0] - ch) // 2, (pixels.shape[1] - cw) // 2
        pixels = pixels[top:top + ch, left:left + cw]
        pixels = (pixels * np.float32(self.rescale) - self.mean) / self.std
        return pixels.transpose(2, 0, 1)

    def _pad_to_crop(self, pixels: np.ndarray) -> np.ndarray:
        """Zero-pad an image smaller than the crop, centred, as transformers' center_crop."""
        ch, cw = self.crop
        h, w = pixels.shape[:2]
        out = np.zeros((max(h, ch), max(w, cw), 3), np.float32)
        top, left = -(-(out.shape[0] - h) // 2), -(-(out.shape[1] - w) // 2)  # rounded up
        out[top:top + h, left:left + w] = pixels
        return out
