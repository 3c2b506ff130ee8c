"""Static int8 (QDQ) drafter UNet: calibration recorded from fp32 drafts, the export option and
its manifest, closeness to the fp32 graph, and the option combinations it refuses. Runs on the
tiny random GLIGEN pipeline with a small calibration (2 prompts x 4 steps) to stay quick."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine  # noqa: E402
from t2i_engines.onnxruntime.session import OrtModel  # noqa: E402
from t2i_export.onnx.calibration import (FeedsReader, calibration_prompts,  # noqa: E402
                                         calibration_settings, record_unet_feeds)
from t2i_export.onnx.gligen_export import UNET_INPUTS, export_gligen, read_manifest  # noqa: E402
from t2i_export.onnx.graph import quantize_int8_static, sensitive_convs  # noqa: E402
from t2i_export.onnx_step import OnnxOptions  # noqa: E402
from t2i_sdk.errors import InputError  # noqa: E402

STEPS = 4
ENGINE = {"guidance_scale": 4.0, "gligen_beta": 0.5}  # 2 grounded steps, then 2 plain
CALIBRATION = {**calibration_settings(None, n_prompts=2, steps=STEPS), "engine_options": ENGINE}
# Held-out check inputs: an evaluation-suite-like prompt the calibration did not see.
CHECK_PROMPT, CHECK_PHRASES = "a photo of a cross left of a circle", ["a cross", "a circle"]
CHECK_BOXES = [[0.05, 0.3, 0.4, 0.7], [0.6, 0.3, 0.95, 0.7]]


@pytest.fixture(scope="module")
def int8_dir(tiny_gligen_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "int8"
    export_gligen(tiny_gligen_dir, out, int8_unet=True, calibration=CALIBRATION)
    return out


@pytest.fixture(scope="module")
def check_feeds(tiny_gligen_onnx) -> list[dict]:
    """UNet inputs of one held-out draft: what the int8 graph is compared on."""
    engine = OrtGligenDrafterEngine.load(tiny_gligen_onnx, device="cpu", **ENGINE)
    recorded = []
    run = engine.unet.run
    engine.unet = type("Rec", (), {"device": "cpu", "run": staticmethod(
        lambda feeds: recorded.append(dict(feeds)) or run(feeds))})()
    engine.generate(CHECK_PROMPT, CHECK_PHRASES, CHECK_BOXES, [7], STEPS)
    return recorded


def test_calibration_prompts_are_outside_the_evaluation_suite():
    from t2i_sdk.shapes.suites import held_out_suite

    prompts = calibration_prompts(12)
    assert len(prompts) == len(set(prompts)) == 12
    assert not set(prompts) & {c.prompt for c in held_out_suite(per_category=50)}
    assert calibration_prompts(12) == prompts  # deterministic
    assert calibration_prompts(12, seed=1) != prompts
    with pytest.raises(ValueError):
        calibration_prompts(0)


def test_recorded_feeds_are_every_unet_call_of_real_drafts(tiny_gligen_onnx):
    prompts = CALIBRATION["prompts"]
    feeds = record_unet_feeds(tiny_gligen_onnx, prompts, steps=STEPS, engine_options=ENGINE)
    assert len(feeds) == len(prompts) * STEPS  # one UNet call per step, CFG in one batch
    assert all(sorted(f) == sorted(UNET_INPUTS) for f in feeds)
    assert all(f["sample"].shape[0] == 2 for f in feeds)  # uncond + cond rows
    scales = [float(f["gligen_scale"][0]) for f in feeds[:STEPS]]
    assert scales == [1.0, 1.0, 0.0, 0.0]  # gligen_beta 0.5: grounded, then plain
    timesteps = [float(f["timestep"][0]) for f in feeds[:STEPS]]
    assert timesteps == sorted(timesteps, reverse=True) and len(set(timesteps)) == STEPS
    reader = FeedsReader(feeds)
    assert [reader.get_next() for _ in feeds] == feeds and reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is feeds[0]


def test_int8_unet_export_is_static_qdq_and_recorded_in_the_manifest(int8_dir):
    graphs = read_manifest(int8_dir)["graphs"]
    unet = graphs["unet"]
    assert unet["dtype"] == "int8"
    assert unet["options"]["quantization"] == "static-qdq"
    assert unet["options"]["calibration"]["prompts"] == CALIBRATION["prompts"]
    assert graphs["text_encoder"]["dtype"] == graphs["vae_decoder"]["dtype"] == "fp32"
    graph = onnx.load(str(int8_dir / "unet" / "model.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    # The sensitive convolutions keep float weights: no DequantizeLinear feeds them.
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    by_name = {n.name: n for n in graph.node}
    kept = sensitive_convs(int8_dir / "unet" / "model.onnx")
    assert {"/unet/conv_in/Conv", "/unet/conv_out/Conv"} <= set(kept)
    assert all(by_name[name].input[1] not in dq_outputs for name in kept)
    quantised = [n for n in graph.node if n.op_type == "Conv" and n.input[1] in dq_outputs]
    assert quantised  # the rest are int8


def test_int8_unet_stays_close_to_fp32(tiny_gligen_onnx, int8_dir, check_feeds):
    # Tolerance: min/max-calibrated uint8 activations with 7-bit per-channel weights leave
    # ~1-3 % relative RMS error on this UNet's output (0.018 on the shapes drafter); 0.1 keeps
    # margin for the random tiny weights while a wrong scale or zero point (errors of order 1)
    # still fails.
    fp32 = OrtModel.load(tiny_gligen_onnx / "unet" / "model.onnx", device="cpu")
    int8 = OrtModel.load(int8_dir / "unet" / "model.onnx", device="cpu")
    errors = []
    for feeds in check_feeds:
        ref, out = fp32.run(feeds)["out_sample"], int8.run(feeds)["out_sample"]
        errors.append(np.sqrt(np.mean((out - ref) ** 2) / np.mean(ref ** 2)))
    assert max(errors) < 0.1, errors


def test_int8_unet_engine_drafts_images_close_to_fp32(tiny_gligen_onnx, int8_dir):
    # Same seed and layout: the images differ by a few grey levels on average (the verify
    # tolerance for int8 drafters is a mean |diff| of 0.05 in [0, 1]).
    images = [OrtGligenDrafterEngine.load(d, device="cpu", **ENGINE).generate(
        CHECK_PROMPT, CHECK_PHRASES, CHECK_BOXES, [3], STEPS)[0] for d in (tiny_gligen_onnx, int8_dir)]
    a, b = (np.asarray(im, np.float64) / 255 for im in images)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 0.05


def test_bad_option_combinations_are_refused(tiny_gligen_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match="fp16"):
        export_gligen(tiny_gligen_dir, tmp_path / "x", fp16=True, int8_unet=True)
    assert not (tmp_path / "x").exists()
    with pytest.raises(InputError, match="--fp16"):
        OnnxOptions(fp16=True, int8_unet=True)
    with pytest.raises(ValueError, match="calibration feed"):
        quantize_int8_static(tmp_path / "a.onnx", tmp_path / "b.onnx", [])

    from t2i_export.bundle_export import export_bundle
    with pytest.raises(InputError, match="--engines onnx"):
        export_bundle(tmp_path / "src", tmp_path / "out", engines="tensorrt",
                      onnx_opts=OnnxOptions(int8_unet=True))

    from t2i_export.cli import main
    assert main(["onnx", str(tiny_gligen_dir), str(tmp_path / "y"), "--fp16", "--int8-unet"]) == 2
    assert "cannot be combined with --fp16" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_stamp_follows_the_options_calibration_depends_on():
    from t2i_export.onnx_step import onnx_stamp

    files = {"unet/model.safetensors": "ab" * 32}
    plain = onnx_stamp(files, OnnxOptions())
    assert "int8_unet" not in plain["options"]  # earlier exports' stamps stay current
    a = onnx_stamp(files, OnnxOptions(int8_unet=True), "gligen", {"guidance_scale": 4.0})
    b = onnx_stamp(files, OnnxOptions(int8_unet=True), "gligen", {"guidance_scale": 7.5})
    assert a != b != plain
    assert onnx_stamp(files, OnnxOptions(int8_unet=True), "clip", {"x": 1}) == \
        onnx_stamp(files, OnnxOptions(int8_unet=True), "clip", {"x": 2})


def test_manifest_dtypes_per_component_kind():
    options = OnnxOptions(int8_unet=True)
    assert options.dtype_for("gligen") == "int8"
    assert options.dtype_for("clip") == options.dtype_for("img2img") == "float32"
    assert OnnxOptions(int8=True).dtype_for("clip") == "int8"
    assert json.loads(json.dumps(calibration_settings({"height": 64, "layout": {
        "max_side": 0.3}, "guidance_scale": 4.0})))["engine_options"] == {
        "height": 64, "guidance_scale": 4.0}
