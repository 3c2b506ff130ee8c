"""ONNX export of the img2img refiner and its onnxruntime engine, against the torch reference."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402

from t2i_engines.noise import SeededNoise  # noqa: E402
from t2i_engines.onnxruntime.img2img_refiner import OrtImg2ImgRefinerEngine  # noqa: E402
from t2i_engines.schedulers import EulerAncestral  # noqa: E402
from t2i_engines.onnxruntime.session import OrtModel  # noqa: E402
from t2i_engines.pytorch import img2img_refiner as torch_refiner  # noqa: E402
from t2i_engines.pytorch.tiny.diffusion_models import build_tiny_refiner  # noqa: E402
from t2i_export.onnx.graph import max_abs_rel_error  # noqa: E402
from t2i_export.onnx.img2img_export import (  # noqa: E402
    EXPORT_JSON, GRAPHS, export_img2img, read_config)
from t2i_sdk.bundle.hashing import hash_tree  # noqa: E402

PROMPT = "a red cup on a wooden table"


@pytest.fixture(scope="module")
def refiner_dir(tmp_path_factory) -> Path:
    return build_tiny_refiner(tmp_path_factory.mktemp("refiner"), seed=0)


@pytest.fixture(scope="module")
def export_fp32(refiner_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "fp32"
    export_img2img(refiner_dir, out)
    return out


@pytest.fixture(scope="module")
def export_fp16(refiner_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "fp16"
    export_img2img(refiner_dir, out, fp16=True, int8_text_encoder=True)
    return out


@pytest.fixture(scope="module")
def torch_modules(refiner_dir) -> dict:
    """The exact torch wrappers that were traced, one per graph."""
    config = read_config(refiner_dir)
    return {name: build(refiner_dir, config).module for name, (_, build) in GRAPHS.items()}


@pytest.fixture(scope="module")
def test_images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]


def graph_inputs(name: str, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for each graph; spatial sizes differ from the traced ones on purpose
    (odd latent sides included) to prove the axes are dynamic."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    if name.startswith("text_encoder"):
        ids = rng.integers(0, 900, (batch, 77))
        ids[:, 0], ids[:, 9] = 998, 999  # BOS ... EOS (tiny vocab: last two ids), then padding
        ids[:, 10:] = 999
        return {"input_ids": ids.astype(np.int64)}
    if name == "unet":
        return {"sample": normal(batch, 4, 19, 13),
                "timestep": rng.uniform(0, 999, batch).astype(np.float32),
                "encoder_hidden_states": normal(batch, 77, 64), "text_embeds": normal(batch, 32),
                "time_ids": np.tile(np.float32([[38, 26, 0, 0, 38, 26]]), (batch, 1))}
    if name == "vae_encoder":
        return {"image": rng.uniform(-1, 1, (batch, 3, 48, 40)).astype(np.float32)}
    return {"latent": normal(batch, 4, 12, 10)}


def torch_outputs(module, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*(torch.from_numpy(v) for v in feeds.values()))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def check_graph(folder: Path, name: str, module, tolerance: float) -> None:
    model = OrtModel.load(folder / name / "model.onnx", device="cpu")
    for batch in (1, 2):
        feeds = graph_inputs(name, batch)
        for ort_out, ref in zip(model.run(feeds).values(), torch_outputs(module, feeds)):
            assert ort_out.shape == ref.shape
            _, rel = max_abs_rel_error(ort_out, ref)
            assert rel < tolerance, f"{name} batch {batch}: relative error {rel:.2e}"


# --- graphs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GRAPHS))
def test_fp32_graph_matches_torch_at_batch_1_and_2(export_fp32, torch_modules, name):
    check_graph(export_fp32, name, torch_modules[name], 1e-4)


@pytest.mark.parametrize("name", ["unet", "vae_encoder", "vae_decoder"])
def test_fp16_graph_matches_torch(export_fp16, torch_modules, name):
    check_graph(export_fp16, name, torch_modules[name], 1e-2)


@pytest.mark.parametrize("name", ["text_encoder", "text_encoder_2"])
def test_int8_text_encoder_is_quantised_and_close(export_fp16, torch_modules, name):
    import onnx

    graph = onnx.load(str(export_fp16 / name / "model.onnx")).graph
    assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for node in graph.node)
    check_graph(export_fp16, name, torch_modules[name], 0.25)


def test_unet_graph_tracks_timestep_and_text(export_fp32):
    """Guards against inputs baked in as constants by the tracer."""
    unet = OrtModel.load(export_fp32 / "unet" / "model.onnx", device="cpu")
    feeds = graph_inputs("unet", 1)
    base = unet.run(feeds)["out_sample"]
    for key, value in (("timestep", feeds["timestep"] * 0.5),
                       ("text_embeds", feeds["text_embeds"] + 1.0),
                       ("time_ids", feeds["time_ids"] * 2.0),
                       ("encoder_hidden_states", feeds["encoder_hidden_states"] + 1.0)):
        changed = unet.run({**feeds, key: value})["out_sample"]
        assert np.abs(changed - base).max() > 1e-3, key


# --- onnx_export.json and re-runs -------------------------------------------------------------

def test_export_json_describes_the_graphs(export_fp32, export_fp16, refiner_dir):
    manifest = json.loads((export_fp32 / EXPORT_JSON).read_text())
    assert manifest["kind"] == "img2img" and manifest["format_version"] == 1
    assert manifest["options"] == {"fp16": False, "int8_text_encoder": False, "optimize": True,
                                   "opset": 17}
    vae_config = json.loads((refiner_dir / "vae" / "config.json").read_text())
    assert manifest["config"]["pipeline"] == "sdxl"
    assert manifest["config"]["vae_scale_factor"] == 2
    assert manifest["config"]["scaling_factor"] == vae_config["scaling_factor"]
    assert manifest["config"]["force_zeros_for_empty_prompt"] is True
    assert manifest["config"]["requires_aesthetics_score"] is False
    assert set(manifest["graphs"]) == set(GRAPHS)
    for name, entry in manifest["graphs"].items():
        model = OrtModel.load(export_fp32 / entry["path"], device="cpu")
        assert (entry["inputs"], entry["outputs"]) == (model.input_names, model.output_names)
        assert entry["dtype"] == "fp32" and entry["opset"] == 17
        assert all((export_fp32 / f).is_file() for f in entry["files"])
        assert entry["source_sha256"] == _folder_sha(refiner_dir / entry["source"])
    dtypes = {k: v["dtype"] for k, v in
              json.loads((export_fp16 / EXPORT_JSON).read_text())["graphs"].items()}
    assert dtypes == {"text_encoder": "int8", "text_encoder_2": "int8", "unet": "fp16",
                      "vae_encoder": "fp16", "vae_decoder": "fp16"}  # tiny VAE: no force_upcast
    for copied in ("tokenizer/tokenizer.json", "tokenizer_2/tokenizer_config.json",
                   "scheduler/scheduler_config.json", "model_index.json"):
        assert (export_fp32 / copied).read_bytes() == (refiner_dir / copied).read_bytes()
    leftovers = [p.name for p in export_fp32.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no scratch folders or temp files survive


def _folder_sha(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for rel, sha in sorted(hash_tree(folder).items()):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def test_rerun_with_same_source_and_options_skips_every_graph(export_fp32, refiner_dir):
    before = {p: p.stat().st_mtime_ns for p in export_fp32.rglob("*.onnx")}
    messages = []
    manifest = export_img2img(refiner_dir, export_fp32, progress=messages.append)
    assert messages == []
    assert {p: p.stat().st_mtime_ns for p in export_fp32.rglob("*.onnx")} == before
    assert manifest == json.loads((export_fp32 / EXPORT_JSON).read_text())


# --- the engine -------------------------------------------------------------------------------

def pixel_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@pytest.mark.parametrize("guidance_scale", [0.0, 3.0])
def test_refine_matches_torch_engine(export_fp32, refiner_dir, test_images, guidance_scale):
    ref = torch_refiner.Img2ImgRefinerEngine.load(refiner_dir, device="cpu",
                                                  guidance_scale=guidance_scale)
    ort = OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu", guidance_scale=guidance_scale)
    for strength, steps in ((0.5, 2), (1.0, 3)):
        expected = ref.refine(test_images, PROMPT, seeds=[1, 2], strength=strength, steps=steps)
        got = ort.refine(test_images, PROMPT, seeds=[1, 2], strength=strength, steps=steps)
        assert [im.size for im in got] == [(64, 64)] * 2
        for a, b in zip(got, expected):
            assert pixel_diff(a, b) < 1.0
    # The comparison has teeth: seeds change the result by far more than the tolerance.
    other = ort.refine(test_images, PROMPT, seeds=[7, 8], strength=1.0, steps=3)
    assert pixel_diff(other[0], got[0]) > 5.0


def test_refine_odd_size_and_fp16_graphs(export_fp32, export_fp16, refiner_dir, test_images):
    odd = [im.resize((50, 38)) for im in test_images]
    ref = torch_refiner.Img2ImgRefinerEngine.load(refiner_dir, device="cpu")
    expected = ref.refine(odd, PROMPT, seeds=[3, 4], strength=0.5, steps=2)
    for folder, tolerance in ((export_fp32, 1.0), (export_fp16, 3.0)):
        got = OrtImg2ImgRefinerEngine.load(folder, device="cpu").refine(
            odd, PROMPT, seeds=[3, 4], strength=0.5, steps=2)
        assert [im.size for im in got] == [(50, 38)] * 2
        assert all(im.mode == "RGB" for im in got)
        assert max(pixel_diff(a, b) for a, b in zip(got, expected)) < tolerance


def test_first_unet_call_gets_the_same_inputs_as_diffusers(export_fp32, refiner_dir,
                                                           test_images):
    """Every UNet input of step one (noised latents, timestep, both text conditions, SDXL time
    ids, negatives first) equals what the diffusers pipeline feeds its UNet, on a non-square,
    non-multiple size with guidance on."""
    odd = [im.resize((51, 38)) for im in test_images]
    ref = torch_refiner.Img2ImgRefinerEngine.load(refiner_dir, device="cpu", guidance_scale=3.0)
    seen = []

    def record(_module, args, kwargs):
        if not seen:
            seen.append({"sample": args[0], "timestep": args[1],
                         "encoder_hidden_states": kwargs["encoder_hidden_states"],
                         **kwargs["added_cond_kwargs"]})

    hook = ref.pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        ref.refine(odd, PROMPT, seeds=[5, 6], strength=0.6, steps=2)
    finally:
        hook.remove()
    ort = OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu", guidance_scale=3.0)
    unet, fed = ort.graphs["unet"], []
    run_bound = unet.run_bound  # the sampling loop binds its inputs (IOBinding)
    unet.run_bound = lambda feeds: fed.append(
        {k: np.array(v, copy=True) for k, v in feeds.items()}) or run_bound(feeds)
    ort.refine(odd, PROMPT, seeds=[5, 6], strength=0.6, steps=2)
    assert len(fed) == 2
    expected = {k: np.broadcast_to(v.numpy(), fed[0][k].shape) for k, v in seen[0].items()}
    assert expected["time_ids"][0].tolist() == [38, 50, 0, 0, 38, 50]  # (h, w) snapped to 2
    for key, value in fed[0].items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_refine_is_per_seed_deterministic(export_fp32, test_images):
    ort = OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu")
    pair = ort.refine(test_images, PROMPT, seeds=[3, 4], strength=0.5, steps=2)
    alone = ort.refine(test_images[1:], PROMPT, seeds=[4], strength=0.5, steps=2)
    assert pixel_diff(pair[1], alone[0]) < 0.01


@pytest.mark.parametrize("kwargs, match", [
    (dict(strength=0.0, steps=2), "strength"), (dict(strength=1.5, steps=2), "strength"),
    (dict(strength=0.5, steps=0), "steps")])
def test_refine_validates_like_torch(export_fp32, test_images, kwargs, match):
    ort = OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu")
    with pytest.raises(ValueError, match=match):
        ort.refine(test_images[:1], PROMPT, seeds=[0], **kwargs)
    with pytest.raises(ValueError, match="differ in length"):
        ort.refine(test_images, PROMPT, seeds=[0], strength=0.5, steps=1)
    with pytest.raises(ValueError, match="share one size"):
        ort.refine([test_images[0], test_images[1].resize((32, 32))], PROMPT, seeds=[0, 1],
                   strength=0.5, steps=1)
    assert ort.refine([], PROMPT, seeds=[], strength=0.5, steps=1) == []


def test_load_rejects_bad_dtype_device_and_folder(export_fp32, refiner_dir):
    with pytest.raises(ValueError, match="dtype"):
        OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu", dtype="float64")
    with pytest.raises(ValueError, match="device"):
        OrtImg2ImgRefinerEngine.load(export_fp32, device="tpu")
    with pytest.raises(ValueError, match=EXPORT_JSON):
        OrtImg2ImgRefinerEngine.load(refiner_dir, device="cpu")  # the torch folder


# --- scheduler and shared rules ---------------------------------------------------------------

@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_euler_ancestral_matches_diffusers(refiner_dir, spacing):
    from diffusers import EulerAncestralDiscreteScheduler

    config = json.loads((refiner_dir / "scheduler" / "scheduler_config.json").read_text())
    config["timestep_spacing"] = spacing
    ours, theirs = EulerAncestral(config), EulerAncestralDiscreteScheduler.from_config(config)
    for n in (1, 3, 4, 7, 10):
        ours.set_timesteps(n)
        theirs.set_timesteps(n)
        np.testing.assert_allclose(ours.timesteps, theirs.timesteps.numpy(), rtol=1e-6)
        np.testing.assert_allclose(ours.sigmas, theirs.sigmas.numpy(), rtol=1e-5)
    sample, eps = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    mine = ours.step(eps.numpy(), 3, sample.numpy(), [SeededNoise(s) for s in (1, 2)])
    theirs.set_begin_index(3)
    ref = theirs.step(eps, theirs.timesteps[3], sample,
                      generator=[torch.Generator().manual_seed(s) for s in (1, 2)]).prev_sample
    np.testing.assert_allclose(mine, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_schedule_length_is_the_torch_rule_and_import_stays_torch_free():
    from t2i_engines.onnxruntime import img2img_refiner

    assert img2img_refiner.schedule_length is torch_refiner.schedule_length
    code = ("import sys, t2i_engines.onnxruntime.img2img_refiner; "
            "sys.exit(int(any(m in sys.modules for m in ('torch', 'diffusers', 'transformers'))))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


class _Stop(Exception):
    pass


@pytest.mark.parametrize("which", ["onnxruntime", "torch"])
def test_on_step_reports_each_step_and_an_exception_aborts(export_fp32, refiner_dir,
                                                           test_images, which):
    engine = (OrtImg2ImgRefinerEngine.load(export_fp32, device="cpu") if which == "onnxruntime"
              else torch_refiner.Img2ImgRefinerEngine.load(refiner_dir, device="cpu"))
    seen = []
    first = engine.refine(test_images, PROMPT, seeds=[1, 2], strength=0.5, steps=3,
                          on_step=seen.append)
    assert seen == [1, 2, 3]

    def stop(i):
        raise _Stop
    with pytest.raises(_Stop):
        engine.refine(test_images, PROMPT, seeds=[1, 2], strength=0.5, steps=3, on_step=stop)
    again = engine.refine(test_images, PROMPT, seeds=[1, 2], strength=0.5, steps=3)
    assert pixel_diff(again[0], first[0]) == 0.0
