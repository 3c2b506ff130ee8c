"""CLIP text and image inputs without transformers (the torch-free runtime's), equal to
transformers' own where transformers is installed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i_engines.clip_image_processing import ClipImageProcessor
from t2i_engines.clip_tokenizer import ClipTokenizer

SCORER = Path(__file__).resolve().parents[1] / "bundles" / "shapes" / "scorer"
TEXTS = ["a red circle", "", "two red circles left of a blue square " * 8, "Ünïcode café 東京 !!"]


def test_token_ids_masks_and_decoding_equal_transformers():
    transformers = pytest.importorskip("transformers")
    theirs, ours = transformers.AutoTokenizer.from_pretrained(SCORER), ClipTokenizer(SCORER)
    for kw in (dict(padding="max_length", max_length=theirs.model_max_length, truncation=True),
               dict(padding=True, truncation=True, max_length=theirs.model_max_length)):
        a, b = theirs(TEXTS, return_tensors="np", **kw), ours(TEXTS, return_tensors="np", **kw)
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
        np.testing.assert_array_equal(a["attention_mask"], b["attention_mask"])
    for text in TEXTS:
        assert ours(text)["input_ids"] == theirs(text, truncation=False, verbose=False)["input_ids"]
        ids = theirs(text, add_special_tokens=False)["input_ids"][:5]
        assert ours.decode(ids) == theirs.decode(ids)


@pytest.mark.parametrize("shortest_edge,crop", [(64, 64), (224, 224), (61, 64)])  # 61: padded
def test_pixels_equal_transformers_pil_path(shortest_edge, crop):
    transformers = pytest.importorskip("transformers")
    config = json.loads((SCORER / "processor_config.json").read_text())["image_processor"]
    config = {**config, "size": {"shortest_edge": shortest_edge},
              "crop_size": {"height": crop, "width": crop}}
    theirs = transformers.CLIPImageProcessor(
        **{k: v for k, v in config.items() if k != "image_processor_type"})
    ours = ClipImageProcessor(config)
    rng = np.random.default_rng(0)
    for w, h in ((64, 64), (100, 37), (37, 100), (13, 200), (7, 5)):
        image = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        want = theirs(images=[image], return_tensors="np")["pixel_values"]
        np.testing.assert_allclose(ours([image]), want, atol=1e-5)


def test_bad_processor_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no processor_config.json or preprocessor_config.json"):
        ClipImageProcessor.from_folder(tmp_path)
    with pytest.raises(ValueError, match="missing or bad field"):
        ClipImageProcessor({"size": {}})
