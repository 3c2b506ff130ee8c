"""Torch diffusion engines on tiny random models of the real architectures (CPU, seconds)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from t2i_engines.pytorch.device import resolve_device, resolve_dtype  # noqa: E402
from t2i_engines.draft_args import grounding_beta  # noqa: E402
from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine  # noqa: E402
from t2i_engines.pytorch.img2img_refiner import Img2ImgRefinerEngine, schedule_length  # noqa: E402
from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer  # noqa: E402
from t2i_engines.pytorch.tiny.diffusion_models import (  # noqa: E402
    build_tiny_gligen,
    build_tiny_refiner,
)

PROMPT = "a photo of a red apple left of a blue cup"
PHRASES = ["a red apple", "a blue cup"]
BOXES = [(0.05, 0.2, 0.45, 0.8), (0.55, 0.3, 0.95, 0.7)]


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def mean_abs_diff(a, b) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def weight_bytes(model_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(model_dir)): p.read_bytes()
            for p in sorted(model_dir.rglob("*.safetensors"))}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def refiner_dir(tmp_path_factory) -> Path:
    return build_tiny_refiner(tmp_path_factory.mktemp("refiner"), seed=0)


@pytest.fixture(scope="module")
def drafter(tiny_gligen_dir) -> GligenDrafterEngine:
    return GligenDrafterEngine.load(tiny_gligen_dir, device="cpu", dtype="auto")


@pytest.fixture(scope="module")
def refiner(refiner_dir) -> Img2ImgRefinerEngine:
    return Img2ImgRefinerEngine.load(refiner_dir, device="cpu", dtype="auto")


@pytest.fixture(scope="module")
def test_image():
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:64]
    rgb = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1) % 256
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


# --- tokenizer -----------------------------------------------------------------------------

def test_tokenizer_loads_with_transformers_and_round_trips(tmp_path):
    out = train_clip_tokenizer(tmp_path / "tok", vocab_size=1000, model_max_length=77)
    classes = [transformers.CLIPTokenizer] + (
        [transformers.CLIPTokenizerFast] if hasattr(transformers, "CLIPTokenizerFast") else [])
    text = "a photo of two red apples left of a blue cup"
    for cls in classes:
        tok = cls.from_pretrained(out)
        assert len(tok) == 1000 and tok.model_max_length == 77
        ids = tok(text)["input_ids"]
        assert tok.convert_ids_to_tokens([ids[0], ids[-1]]) == ["<|startoftext|>", "<|endoftext|>"]
        # Corpus words are whole tokens: one id per word plus the two specials.
        assert len(ids) == len(text.split()) + 2
        assert tok.decode(ids, skip_special_tokens=True) == text
        # Byte-level: unseen characters still encode without unknown tokens.
        odd = tok("qzx 42 ü")["input_ids"][1:-1]
        assert tok.unk_token_id not in odd


def test_tokenizer_training_is_deterministic(tmp_path):
    a = train_clip_tokenizer(tmp_path / "a")
    b = train_clip_tokenizer(tmp_path / "b")
    assert folder_bytes(a) == folder_bytes(b)


# --- tiny model builds ---------------------------------------------------------------------

@pytest.mark.parametrize("build", [build_tiny_gligen, build_tiny_refiner])
def test_tiny_builds_are_deterministic_per_seed(build, tmp_path):
    same_a = weight_bytes(build(tmp_path / "a", seed=0))
    same_b = weight_bytes(build(tmp_path / "b", seed=0))
    other = weight_bytes(build(tmp_path / "c", seed=1))
    assert same_a and same_a == same_b
    assert same_a.keys() == other.keys()
    assert all(same_a[k] != other[k] for k in same_a)
    total = sum(len(v) for v in same_a.values())
    assert total < 5_000_000  # bytes: tiny enough to build in every test run


def test_tiny_refiner_is_sdxl_img2img_with_turbo_scheduler(refiner):
    assert type(refiner.pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert refiner.pipe.unet.config.addition_embed_type == "text_time"
    assert type(refiner.pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert refiner.pipe.scheduler.config.timestep_spacing == "trailing"


# --- device --------------------------------------------------------------------------------

def test_resolve_device_and_dtype():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("float8", "cpu")


# --- drafter -------------------------------------------------------------------------------

def test_drafter_returns_one_rgb_image_per_seed(drafter):
    images = drafter.generate(PROMPT, PHRASES, BOXES, seeds=[1, 2, 3], steps=2)
    assert len(images) == 3
    assert all(im.mode == "RGB" and im.size == (64, 64) for im in images)
    assert mean_abs_diff(images[0], images[1]) > 5  # different seeds, different images


def test_drafter_image_depends_only_on_its_seed(drafter):
    batch = drafter.generate(PROMPT, PHRASES, BOXES, seeds=[1, 2], steps=3)
    alone = drafter.generate(PROMPT, PHRASES, BOXES, seeds=[2], steps=3)
    again = drafter.generate(PROMPT, PHRASES, BOXES, seeds=[2], steps=3)
    assert np.array_equal(pixels(alone[0]), pixels(again[0]))
    # Batched BLAS kernels differ from single-sample ones by ~1e-6 in float, which can flip
    # the rounding of a few uint8 pixels by one level; anything more would be a seeding bug.
    diff = np.abs(pixels(batch[1]) - pixels(alone[0]))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_drafter_layout_grounds_and_empty_layout_is_plain_t2i(drafter):
    grounded = drafter.generate(PROMPT, PHRASES, BOXES, seeds=[5], steps=2)[0]
    plain = drafter.generate(PROMPT, [], [], seeds=[5], steps=2)[0]
    moved = drafter.generate(PROMPT, PHRASES, [(0.1, 0.1, 0.3, 0.3), (0.6, 0.6, 0.9, 0.9)],
                             seeds=[5], steps=2)[0]
    assert plain.size == grounded.size == (64, 64)
    assert mean_abs_diff(grounded, plain) > 1  # the boxes reach the UNet
    # Where they are matters too, though weakly: in a random position net the box's Fourier
    # features are 2 of 30 object tokens, so moving boxes shifts only some pixels.
    assert mean_abs_diff(grounded, moved) > 0


def test_grounding_beta_grounds_at_least_one_step_unless_disabled():
    assert grounding_beta(0.3, 50) == 0.3
    assert grounding_beta(0.0, 2) == 0.0
    for steps in range(1, 60):
        assert int(grounding_beta(0.3, steps) * steps) >= 1  # the pipeline's own formula


def test_drafter_counts_tokens_with_specials_untruncated(drafter):
    assert drafter.max_prompt_tokens == 77
    assert drafter.count_tokens("a dog") == 4
    assert drafter.count_tokens("dog " * 100) == 102
    # An over-long phrase is cut to fit instead of overflowing the text encoder.
    assert len(drafter.generate("x", ["dog " * 100], [(0, 0, 1, 1)], seeds=[0], steps=1)) == 1


def test_drafter_rejects_mismatched_phrases_and_boxes(drafter):
    with pytest.raises(ValueError, match="phrases and boxes"):
        drafter.generate(PROMPT, PHRASES, BOXES[:1], seeds=[0], steps=1)
    with pytest.raises(ValueError, match="steps"):
        drafter.generate(PROMPT, PHRASES, BOXES, seeds=[0], steps=0)


# --- refiner -------------------------------------------------------------------------------

def test_schedule_length_runs_exactly_the_requested_steps():
    assert schedule_length(2, 0.5) == 4  # SDXL-Turbo's documented img2img usage
    for steps, strength in itertools.product(range(1, 9), np.linspace(0.05, 1.0, 20)):
        n = schedule_length(steps, float(strength))
        assert int(n * float(strength)) == steps  # the formula diffusers applies


def test_refiner_runs_exactly_steps_unet_calls(refiner, test_image):
    calls = []
    hook = refiner.pipe.unet.register_forward_hook(lambda *_: calls.append(1))
    try:
        refiner.refine([test_image], "a cup", seeds=[0], strength=0.3, steps=2)
    finally:
        hook.remove()
    assert len(calls) == 2  # guidance_scale 0: one UNet call per step


def test_refiner_keeps_size_and_is_deterministic_per_seed(refiner, test_image):
    odd = test_image.resize((72, 48))
    out = refiner.refine([odd, odd], "a cup", seeds=[3, 4], strength=0.5, steps=2)
    assert [im.size for im in out] == [(72, 48)] * 2 and all(im.mode == "RGB" for im in out)
    again = refiner.refine([odd], "a cup", seeds=[3], strength=0.5, steps=2)
    assert np.abs(pixels(out[0]) - pixels(again[0])).max() <= 1
    assert mean_abs_diff(out[0], out[1]) > 1


@pytest.mark.parametrize("kwargs, name", [
    ({"strength": 0.0, "steps": 2}, "strength"), ({"strength": 1.5, "steps": 2}, "strength"),
    ({"strength": 0.5, "steps": 0}, "steps"),
])
def test_refiner_validates_strength_and_steps(refiner, test_image, kwargs, name):
    with pytest.raises(ValueError, match=name):
        refiner.refine([test_image], "a cup", seeds=[0], **kwargs)


def vae_round_trip(refiner, image):
    """What img2img returns as strength -> 0: the image through the VAE and back."""
    pipe = refiner.pipe
    with torch.inference_mode():
        latents = pipe.vae.encode(pipe.image_processor.preprocess(image)).latent_dist.mean
        decoded = pipe.vae.decode(latents).sample
    return pipe.image_processor.postprocess(decoded)[0]


def test_low_strength_changes_the_image_less_than_high_strength(refiner, test_image):
    round_trip = vae_round_trip(refiner, test_image)
    seeds = [0, 1]
    low = refiner.refine([test_image] * 2, "a cup", seeds=seeds, strength=0.1, steps=2)
    high = refiner.refine([test_image] * 2, "a cup", seeds=seeds, strength=1.0, steps=2)
    for lo, hi in zip(low, high):
        # The tiny VAE is random, so compare against its round trip as well as the input.
        assert mean_abs_diff(lo, round_trip) + 5 < mean_abs_diff(hi, round_trip)
        assert mean_abs_diff(lo, test_image) < mean_abs_diff(hi, test_image)
