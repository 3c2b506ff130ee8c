"""GLIGEN drafter exported to ONNX: each graph against torch, and the onnxruntime engine
against the torch engine, on the tiny random GLIGEN pipeline (CPU, seconds)."""
from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine  # noqa: E402
from t2i_engines.onnxruntime.session import OrtModel  # noqa: E402
from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine  # noqa: E402
from t2i_export.onnx.gligen_export import (GRAPH_IO, example_inputs, export_gligen,  # noqa: E402
                                          load_graph_module, read_manifest)
from t2i_export.onnx.graph import max_abs_rel_error  # noqa: E402
from t2i_sdk.bundle.hashing import sha256_file  # noqa: E402

PROMPT = "a photo of a red apple left of a blue cup"
PHRASES = ["a red apple", "a blue cup"]
BOXES = [(0.05, 0.2, 0.45, 0.8), (0.55, 0.3, 0.95, 0.7)]
SEEDS = [1, 2, 3]
STEPS = 4
# (batch, latent size): batch 1 and 3, the default 32x32 latent and a smaller one.
SHAPES = [(1, None), (3, 16)]


def mean_abs_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


@pytest.fixture(scope="module")
def fp16_dir(tiny_gligen_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "fp16"
    export_gligen(tiny_gligen_dir, out, fp16=True)
    return out


@pytest.fixture(scope="module")
def references(tiny_gligen_dir) -> dict:
    return {name: load_graph_module(tiny_gligen_dir, name) for name in GRAPH_IO}


@pytest.fixture(scope="module")
def torch_engine(tiny_gligen_dir) -> GligenDrafterEngine:
    return GligenDrafterEngine.load(tiny_gligen_dir, device="cpu", dtype="auto")


@pytest.fixture(scope="module")
def ort_engine(tiny_gligen_onnx) -> OrtGligenDrafterEngine:
    return OrtGligenDrafterEngine.load(tiny_gligen_onnx, device="cpu", dtype="auto")


def graph_errors(folder: Path, name: str, reference, batch: int, size: int | None) -> dict:
    """{output name: max relative error} of graph ``name`` vs its torch module."""
    pipeline = read_manifest(folder)["pipeline"]
    args = example_inputs(name, pipeline, batch=batch, height=size, width=size, seed=7)
    with torch.no_grad():
        expected = reference(*args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    inputs, outputs = GRAPH_IO[name]
    got = OrtModel.load(folder / name / "model.onnx", device="cpu").run(
        {n: a.numpy() for n, a in zip(inputs, args)})
    for out, ref in zip(outputs, expected):
        assert got[out].shape == tuple(ref.shape), out
    return {out: max_abs_rel_error(got[out], ref.numpy())[1]
            for out, ref in zip(outputs, expected)}


# --- graphs vs torch -------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GRAPH_IO))
@pytest.mark.parametrize("batch,size", SHAPES)
def test_fp32_graph_matches_torch(tiny_gligen_onnx, references, name, batch, size):
    errors = graph_errors(tiny_gligen_onnx, name, references[name], batch, size)
    assert max(errors.values()) < 1e-4, errors


@pytest.mark.parametrize("name", list(GRAPH_IO))
@pytest.mark.parametrize("batch,size", SHAPES)
def test_fp16_graph_matches_torch(fp16_dir, references, name, batch, size):
    errors = graph_errors(fp16_dir, name, references[name], batch, size)
    assert max(errors.values()) < 1e-2, errors


def test_gligen_scale_selects_grounded_or_plain_diffusers_unet(tiny_gligen_onnx, tiny_gligen_dir):
    """Scale 1 = diffusers' UNet with GLIGEN inputs; scale 0 = the same UNet without them
    (what the plain pipeline, or the fuser switched off, computes)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_gligen_dir / "unet").eval()
    pipeline = read_manifest(tiny_gligen_onnx)["pipeline"]
    sample, t, text, boxes, embeds, masks, _ = example_inputs("unet", pipeline, batch=2, seed=3)
    masks[:] = 1.0
    gligen = {"boxes": boxes, "positive_embeddings": embeds, "masks": masks}
    with torch.no_grad():
        grounded = unet(sample, t, text, cross_attention_kwargs={"gligen": gligen}).sample
        plain = unet(sample, t, text).sample
    session = OrtModel.load(tiny_gligen_onnx / "unet" / "model.onnx", device="cpu")
    feeds = {"sample": sample.numpy(), "timestep": t.numpy(), "encoder_hidden_states": text.numpy(),
             "gligen_boxes": boxes.numpy(), "gligen_positive_embeddings": embeds.numpy(),
             "gligen_masks": masks.numpy()}
    on = session.run({**feeds, "gligen_scale": np.ones(1, np.float32)})["out_sample"]
    off = session.run({**feeds, "gligen_scale": np.zeros(1, np.float32)})["out_sample"]
    assert max_abs_rel_error(on, grounded.numpy())[1] < 1e-4
    assert max_abs_rel_error(off, plain.numpy())[1] < 1e-4
    assert max_abs_rel_error(grounded.numpy(), plain.numpy())[1] > 1e-2  # the boxes matter


def test_fp16_unet_keeps_sinusoidal_embeddings_in_fp32(fp16_dir):
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(fp16_dir / "unet" / "model.onnx"))
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*model.graph.value_info, *model.graph.input]}
    sinusoids = [n for n in model.graph.node if n.op_type in ("Sin", "Cos")]
    assert len(sinusoids) >= 4  # timestep projection + box Fourier features
    assert all(types[n.input[0]] == onnx.TensorProto.FLOAT for n in sinusoids)
    assert any(types.get(v.name) == onnx.TensorProto.FLOAT16 for v in model.graph.value_info)


# --- export folder ---------------------------------------------------------------------------

def test_export_manifest_describes_the_graphs(tiny_gligen_onnx, fp16_dir, tiny_gligen_dir):
    manifest = json.loads((tiny_gligen_onnx / "onnx_export.json").read_text())
    assert set(manifest["graphs"]) == set(GRAPH_IO)
    for name, entry in manifest["graphs"].items():
        session = OrtModel.load(tiny_gligen_onnx / entry["path"], device="cpu")
        assert (entry["inputs"], entry["outputs"]) == (session.input_names, session.output_names)
        assert entry["dtype"] == "fp32" and entry["opset"] == 17
        assert entry["options"] == {"fp16": False, "int8": False, "optimize": True, "opset": 17}
    unet_sources = manifest["graphs"]["unet"]["source_sha256"]
    weights = "diffusion_pytorch_model.safetensors"
    assert unet_sources[weights] == sha256_file(tiny_gligen_dir / "unet" / weights)
    assert manifest["pipeline"] == {
        "class": "StableDiffusionGLIGENPipeline", "latent_channels": 4, "sample_size": 32,
        "vae_scale_factor": 2, "image_size_multiple": 4, "text_max_length": 77,
        "text_hidden_size": 32, "cross_attention_dim": 32, "max_objects": 30, "box_mask": False,
        "regional_prompts": False,
        "vae_scaling_factor": json.loads((tiny_gligen_dir / "vae/config.json").read_text())[
            "scaling_factor"]}
    assert {g["dtype"] for g in read_manifest(fp16_dir)["graphs"].values()} == {"fp16"}
    for copied in ("model_index.json", "tokenizer/tokenizer.json",
                   "scheduler/scheduler_config.json"):
        assert (tiny_gligen_onnx / copied).read_bytes() == (tiny_gligen_dir / copied).read_bytes()
    # Only final graphs remain: no intermediates, no temp files.
    assert sorted(p.name for p in tiny_gligen_onnx.rglob("*.onnx*")) == ["model.onnx"] * 3
    assert not [p for p in tiny_gligen_onnx.rglob(".*")]


def test_reexport_keeps_unchanged_graphs_and_redoes_changed_ones(tiny_gligen_onnx, tiny_gligen_dir,
                                                                 references, tmp_path):
    out = tmp_path / "int8"
    shutil.copytree(tiny_gligen_onnx, out)
    unet_bytes = (out / "unet" / "model.onnx").read_bytes()
    steps: list[str] = []
    manifest = export_gligen(tiny_gligen_dir, out, int8_text_encoder=True, progress=steps.append)
    assert "unet: unchanged, kept" in steps and "vae_decoder: unchanged, kept" in steps
    assert "text_encoder: exporting (int8)" in steps
    assert (out / "unet" / "model.onnx").read_bytes() == unet_bytes
    assert [manifest["graphs"][n]["dtype"] for n in GRAPH_IO] == ["int8", "fp32", "fp32"]
    assert read_manifest(out) == manifest
    import onnx

    ops = {n.op_type for n in onnx.load(out / "text_encoder" / "model.onnx").graph.node}
    assert "MatMulInteger" in ops
    errors = graph_errors(out, "text_encoder", references["text_encoder"], 2, None)
    assert max(errors.values()) < 0.1, errors  # int8 is approximate, but not garbage


def test_export_rejects_a_non_gligen_folder(tmp_path):
    with pytest.raises(ValueError, match="not a diffusers GLIGEN pipeline"):
        export_gligen(tmp_path, tmp_path / "out")


# --- engine vs torch engine ------------------------------------------------------------------

def test_engine_interface_matches_the_torch_engine():
    for method in ("load", "generate", "count_tokens"):
        ort_sig = inspect.signature(getattr(OrtGligenDrafterEngine, method))
        torch_sig = inspect.signature(getattr(GligenDrafterEngine, method))
        # the exported engine may add only `runtime` (onnxruntime | tensorrt graphs)
        ort_params = [p for p in ort_sig.parameters.values() if p.name != "runtime"]
        assert ort_params == list(torch_sig.parameters.values()), method


@pytest.mark.parametrize("phrases,boxes", [(PHRASES, BOXES), ([], [])],
                         ids=["layout", "no-layout"])
def test_engine_images_match_torch_engine(ort_engine, torch_engine, phrases, boxes):
    ours = ort_engine.generate(PROMPT, phrases, boxes, SEEDS, STEPS)
    theirs = torch_engine.generate(PROMPT, phrases, boxes, SEEDS, STEPS)
    assert [im.size for im in ours] == [im.size for im in theirs] == [(64, 64)] * 3
    assert all(im.mode == "RGB" for im in ours)
    diffs = [mean_abs_diff(a, b) for a, b in zip(ours, theirs)]
    assert max(diffs) < 1.0, diffs
    assert mean_abs_diff(ours[0], ours[1]) > 5.0  # seeds matter: not a constant image


def test_engine_layout_changes_the_image(ort_engine):
    grounded = ort_engine.generate(PROMPT, PHRASES, BOXES, [1], STEPS)[0]
    plain = ort_engine.generate(PROMPT, [], [], [1], STEPS)[0]
    assert mean_abs_diff(grounded, plain) > 1.0


def test_fp16_engine_is_close_to_torch_engine(fp16_dir, torch_engine):
    engine = OrtGligenDrafterEngine.load(fp16_dir, device="cpu")
    ours = engine.generate(PROMPT, PHRASES, BOXES, [5], STEPS)[0]
    theirs = torch_engine.generate(PROMPT, PHRASES, BOXES, [5], STEPS)[0]
    assert mean_abs_diff(ours, theirs) < 1.0


def test_engine_settings_follow_the_torch_engine(tiny_gligen_onnx, tiny_gligen_dir):
    kwargs = dict(device="cpu", guidance_scale=1.0, height=48, width=32, gligen_beta=1.0)
    ours = OrtGligenDrafterEngine.load(tiny_gligen_onnx, **kwargs).generate(
        PROMPT, PHRASES, BOXES, [9], 2)[0]
    theirs = GligenDrafterEngine.load(tiny_gligen_dir, **kwargs).generate(
        PROMPT, PHRASES, BOXES, [9], 2)[0]
    assert ours.size == theirs.size == (32, 48)
    assert mean_abs_diff(ours, theirs) < 1.0


def test_count_tokens_matches_torch_engine(ort_engine, torch_engine):
    assert ort_engine.max_prompt_tokens == torch_engine.max_prompt_tokens == 77
    for text in ["", PROMPT, "a red apple " * 40]:
        assert ort_engine.count_tokens(text) == torch_engine.count_tokens(text)
    assert ort_engine.count_tokens("a red apple " * 40) > 77  # untruncated


def test_long_phrases_are_cut_like_the_torch_engine(ort_engine, torch_engine):
    phrases = ["a red apple " * 40]
    ours = ort_engine.generate(PROMPT, phrases, BOXES[:1], [4], 2)[0]
    theirs = torch_engine.generate(PROMPT, phrases, BOXES[:1], [4], 2)[0]
    assert mean_abs_diff(ours, theirs) < 1.0


def test_engine_rejects_bad_arguments(ort_engine, tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        ort_engine.generate(PROMPT, PHRASES, BOXES[:1], [1], 2)
    with pytest.raises(ValueError, match="seeds"):
        ort_engine.generate(PROMPT, [], [], [], 2)
    with pytest.raises(ValueError, match="steps"):
        ort_engine.generate(PROMPT, [], [], [1], 0)
    with pytest.raises(ValueError, match="onnx_export.json"):
        OrtGligenDrafterEngine.load(tmp_path)
    with pytest.raises(ValueError, match="multiples of 4"):
        OrtGligenDrafterEngine.load(ort_engine.folder, device="cpu", height=62).generate(
            PROMPT, [], [], [1], 1)
    with pytest.raises(ValueError, match="dtype"):
        OrtGligenDrafterEngine.load(tmp_path, dtype="float8")


class _Stop(Exception):
    pass


def _stop_at(n):
    def on_step(i):
        if i == n:
            raise _Stop
    return on_step


@pytest.mark.parametrize("which", ["onnxruntime", "torch"])
@pytest.mark.parametrize("phrases,boxes", [(PHRASES, BOXES), ([], [])], ids=["layout", "no-layout"])
def test_on_step_reports_each_step_and_an_exception_aborts(ort_engine, torch_engine, which,
                                                           phrases, boxes):
    engine = ort_engine if which == "onnxruntime" else torch_engine
    seen = []
    image = engine.generate(PROMPT, phrases, boxes, [1], STEPS, on_step=seen.append)[0]
    assert seen == list(range(1, STEPS + 1))
    with pytest.raises(_Stop):
        engine.generate(PROMPT, phrases, boxes, [1], STEPS, on_step=_stop_at(2))
    # an aborted call leaves no state behind: the next call draws the same image
    assert mean_abs_diff(engine.generate(PROMPT, phrases, boxes, [1], STEPS)[0], image) == 0.0
