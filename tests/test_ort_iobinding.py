"""IOBinding in the onnxruntime engines: ``OrtModel.to_device`` / ``run_bound`` on the CPU EP,
and the GLIGEN drafter and img2img refiner binding their UNet conditioning once per call
(the same path the CUDA / TensorRT EPs take), bit-identical to the plain numpy ``run``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine  # noqa: E402
from t2i_engines.onnxruntime.img2img_refiner import OrtImg2ImgRefinerEngine  # noqa: E402
from t2i_engines.onnxruntime.session import OrtModel, place_constants, run_to_host  # noqa: E402
from t2i_engines.pytorch.tiny.diffusion_models import (  # noqa: E402
    build_tiny_gligen, build_tiny_refiner)
from t2i_export.onnx.gligen_export import export_gligen  # noqa: E402
from t2i_export.onnx.img2img_export import export_img2img  # noqa: E402

PROMPT = "a photo of a red apple left of a blue cup"
PHRASES, BOXES = ["a red apple", "a blue cup"], [(0.05, 0.2, 0.45, 0.8), (0.55, 0.3, 0.95, 0.7)]
STEPS = 4


@pytest.fixture(scope="module")
def scale_add(tmp_path_factory) -> OrtModel:
    """y = x * scale + float(ids): a float input, an int64 one and a [1] scalar input."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["ids"], ["idf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "scale"], ["xs"]),
             helper.make_node("Add", ["xs", "idf"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
              helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", 3]),
              helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1])]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    model = helper.make_model(helper.make_graph(nodes, "scale_add", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # loadable by every onnxruntime the project supports
    path = tmp_path_factory.mktemp("graph") / "scale_add.onnx"
    onnx.save(model, path)
    return OrtModel.load(path, device="cpu", threads=1)


def test_to_device_casts_to_the_graph_dtypes_and_places_on_cpu(scale_add):
    placed = scale_add.to_device({"ids": np.arange(6, dtype=np.int32).reshape(2, 3),
                                  "scale": np.array([2.0])})  # a subset of the inputs is fine
    assert set(placed) == {"ids", "scale"}
    assert all(isinstance(v, ort.OrtValue) and v.device_name() == "cpu" for v in placed.values())
    assert placed["ids"].data_type() == "tensor(int64)"
    assert placed["scale"].data_type() == "tensor(float)"
    np.testing.assert_array_equal(placed["ids"].numpy(), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="expected inputs"):
        scale_add.to_device({"nope": np.zeros(1)})


def test_run_bound_with_mixed_inputs_equals_run(scale_add):
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((4, 3)), "ids": rng.integers(0, 9, (4, 3)),
             "scale": np.array([0.5])}
    expected = scale_add.run(feeds)["y"]
    constants = scale_add.to_device({"ids": feeds["ids"], "scale": feeds["scale"]})
    for _ in range(2):  # the placed constants are reusable across calls
        out = scale_add.run_bound({"x": feeds["x"], **constants})["y"]
        assert isinstance(out, ort.OrtValue) and out.device_name() == "cpu"
        np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(run_to_host(scale_add, {"x": feeds["x"], **constants})["y"],
                                  expected)
    with pytest.raises(ValueError, match="expected inputs"):
        scale_add.run_bound({"x": feeds["x"], "scale": constants["scale"]})  # ids missing


def test_runners_without_iobinding_get_plain_numpy_run():
    class NumpyRunner:  # what TensorRT's TrtModel offers
        def run(self, feeds):
            return {"y": feeds["x"] * feeds["scale"]}

    runner, x, scale = NumpyRunner(), np.ones(3, np.float32), np.array([2.0], np.float32)
    assert place_constants(runner, {"scale": scale})["scale"] is scale
    np.testing.assert_array_equal(run_to_host(runner, {"x": x, "scale": scale})["y"], x * 2)


def run_via_numpy(self, feeds):
    """``run_bound`` done with the plain numpy ``run``: the pre-IOBinding reference."""
    out = self.run({name: np.asarray(value) for name, value in feeds.items()})
    return {name: ort.OrtValue.ortvalue_from_numpy(value) for name, value in out.items()}


def spy_unet(monkeypatch, unet: OrtModel) -> tuple[list, list]:
    """Record ``to_device`` calls holding the text conditioning, and every UNet run's feeds;
    fail on a plain ``run`` (the loop must bind)."""
    placed, steps = [], []
    to_device, run_bound = unet.to_device, unet.run_bound

    def spy_to_device(feeds):
        if "encoder_hidden_states" in feeds:
            placed.append(sorted(feeds))
        return to_device(feeds)

    monkeypatch.setattr(unet, "to_device", spy_to_device)
    monkeypatch.setattr(unet, "run_bound", lambda feeds: steps.append(feeds) or run_bound(feeds))
    monkeypatch.setattr(unet, "run", lambda feeds: pytest.fail("UNet ran without IOBinding"))
    return placed, steps


def _exported(tmp_path_factory, name: str, build, export) -> Path:
    """A tiny model built by ``build`` and exported to ONNX by ``export``; the export folder."""
    out = tmp_path_factory.mktemp("onnx") / name
    export(build(tmp_path_factory.mktemp(name), seed=0), out)
    return out


@pytest.fixture(scope="module")
def gligen_dir(tmp_path_factory) -> Path:
    return _exported(tmp_path_factory, "gligen", build_tiny_gligen, export_gligen)


def test_drafter_binds_the_conditioning_once_per_call(gligen_dir, monkeypatch):
    engine = OrtGligenDrafterEngine.load(gligen_dir, device="cpu", gligen_beta=0.5)
    placed, steps = spy_unet(monkeypatch, engine.unet)
    engine.generate(PROMPT, PHRASES, BOXES, [1, 2], STEPS)
    assert len(placed) == 1 and len(steps) == STEPS
    assert placed[0] == ["encoder_hidden_states", "gligen_boxes", "gligen_masks",
                         "gligen_positive_embeddings"]
    for key in placed[0] + ["gligen_scale"]:
        assert all(isinstance(s[key], ort.OrtValue) for s in steps), key
        if key != "gligen_scale":  # the very same device values, every step
            assert len({id(s[key]) for s in steps}) == 1, key
    assert [float(s["gligen_scale"].numpy()[0]) for s in steps] == [1.0, 1.0, 0.0, 0.0]
    assert all(isinstance(s["sample"], np.ndarray) for s in steps)  # latents change per step


def test_drafter_bound_loop_is_bit_identical_to_numpy_run(gligen_dir, monkeypatch):
    engine = OrtGligenDrafterEngine.load(gligen_dir, device="cpu")
    bound = engine.generate(PROMPT, PHRASES, BOXES, [3], STEPS)[0]
    monkeypatch.setattr(OrtModel, "run_bound", run_via_numpy)
    plain = engine.generate(PROMPT, PHRASES, BOXES, [3], STEPS)[0]
    np.testing.assert_array_equal(np.asarray(bound), np.asarray(plain))


@pytest.fixture(scope="module")
def refiner_dir(tmp_path_factory) -> Path:
    return _exported(tmp_path_factory, "refiner", build_tiny_refiner, export_img2img)


@pytest.fixture(scope="module")
def images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]


def test_refiner_binds_the_text_conditions_once_per_call(refiner_dir, images, monkeypatch):
    engine = OrtImg2ImgRefinerEngine.load(refiner_dir, device="cpu", guidance_scale=3.0)
    placed, steps = spy_unet(monkeypatch, engine.graphs["unet"])
    engine.refine(images, PROMPT, seeds=[1, 2], strength=1.0, steps=3)
    assert placed == [["encoder_hidden_states", "text_embeds", "time_ids"]]
    assert len(steps) == 3
    for key in placed[0]:
        assert len({id(s[key]) for s in steps}) == 1, key


def test_refiner_bound_loop_is_bit_identical_to_numpy_run(refiner_dir, images, monkeypatch):
    engine = OrtImg2ImgRefinerEngine.load(refiner_dir, device="cpu", guidance_scale=3.0)
    bound = engine.refine(images, PROMPT, seeds=[4, 5], strength=0.6, steps=3)
    monkeypatch.setattr(OrtModel, "run_bound", run_via_numpy)
    plain = engine.refine(images, PROMPT, seeds=[4, 5], strength=0.6, steps=3)
    for a, b in zip(bound, plain):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
