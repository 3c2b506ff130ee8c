"""ONNX machinery (graph.py, OrtModel) and the CLIP scorer's export + onnxruntime engine,
checked against the torch reference on the tiny random CLIP."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402

from t2i_export.onnx import graph  # noqa: E402
from t2i_export.onnx.clip_export import export_clip  # noqa: E402
from t2i_engines.onnxruntime.session import OrtModel  # noqa: E402

TEXTS = ["a photo of a cat", "two red apples on a wooden table next to a blue cup",
         "a dog", "three yellow bananas in a kitchen", "a painting of a green tree at night"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from t2i_engines.pytorch.tiny.clip_model import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "src", seed=0)


@pytest.fixture(scope="module")
def exports(tiny_clip, tmp_path_factory) -> dict[str, Path]:
    """One export per precision of the tiny CLIP: {"fp32" | "fp16" | "int8": folder}."""
    root = tmp_path_factory.mktemp("onnx")
    return {"fp32": _export(tiny_clip, root / "fp32"),
            "fp16": _export(tiny_clip, root / "fp16", fp16=True),
            "int8": _export(tiny_clip, root / "int8", int8=True)}


def _export(src: Path, out: Path, **options) -> Path:
    export_clip(src, out, **options)
    return out


@pytest.fixture(scope="module")
def torch_clip(tiny_clip):
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(tiny_clip, local_files_only=True)


def _torch_text(torch_clip, texts):
    model, tokenizer = torch_clip
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = model.get_text_features(input_ids=enc["input_ids"],
                                      attention_mask=enc["attention_mask"]).pooler_output
    return {k: v.numpy() for k, v in enc.items()}, out.numpy()


def _torch_image(torch_clip, batch: int):
    model, _ = torch_clip
    size = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        out = model.get_image_features(pixel_values=pixels).pooler_output
    return pixels.numpy(), out.numpy()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("batch", [1, 5])
def test_towers_match_torch(exports, torch_clip, precision, batch):
    folder = exports[precision]
    feeds, expected = _torch_text(torch_clip, TEXTS[:batch])
    got = OrtModel.load(folder / "text_model" / "model.onnx", device="cpu").run(
        {"input_ids": feeds["input_ids"], "attention_mask": feeds["attention_mask"]})
    assert got["text_embeds"].shape == expected.shape
    assert got["text_embeds"].dtype == np.float32  # fp16 graphs keep fp32 IO
    assert graph.max_abs_rel_error(got["text_embeds"], expected)[1] < TOLERANCE[precision]

    pixels, expected = _torch_image(torch_clip, batch)
    got = OrtModel.load(folder / "vision_model" / "model.onnx", device="cpu").run(
        {"pixel_values": pixels})["image_embeds"]
    assert got.shape == expected.shape and got.dtype == np.float32
    assert graph.max_abs_rel_error(got, expected)[1] < TOLERANCE[precision]


def test_int8_towers_stay_correlated(exports, torch_clip):
    folder = exports["int8"]
    feeds, expected = _torch_text(torch_clip, TEXTS)
    got = OrtModel.load(folder / "text_model" / "model.onnx", device="cpu").run(
        {"input_ids": feeds["input_ids"], "attention_mask": feeds["attention_mask"]})
    assert _cosines(got["text_embeds"], expected).min() > 0.9
    pixels, expected = _torch_image(torch_clip, 5)
    got = OrtModel.load(folder / "vision_model" / "model.onnx", device="cpu").run(
        {"pixel_values": pixels})["image_embeds"]
    assert _cosines(got, expected).min() > 0.9
    # Quantised for real: int8 weights in the graph, and a smaller file than fp32.
    import onnx

    model = onnx.load(str(folder / "vision_model" / "model.onnx"))
    assert any(t.data_type == onnx.TensorProto.INT8 for t in model.graph.initializer)
    fp32_size = (exports["fp32"] / "vision_model" / "model.onnx").stat().st_size
    assert (folder / "vision_model" / "model.onnx").stat().st_size < fp32_size


def test_padding_is_masked(exports, torch_clip):
    """A text's embedding does not depend on how long the other texts in its batch are."""
    model = OrtModel.load(exports["fp32"] / "text_model" / "model.onnx", device="cpu")
    alone, _ = _torch_text(torch_clip, TEXTS[2:3])
    padded, _ = _torch_text(torch_clip, TEXTS[1:3])
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    one = model.run({k: alone[k] for k in ("input_ids", "attention_mask")})["text_embeds"][0]
    two = model.run({k: padded[k] for k in ("input_ids", "attention_mask")})["text_embeds"][1]
    assert graph.max_abs_rel_error(two, one)[1] < 1e-5


def test_engine_matches_torch_engine(exports, tiny_clip):
    from PIL import Image

    from t2i_engines.onnxruntime.clip_scorer import OrtClipScorerEngine
    from t2i_engines.pytorch.clip_scorer import ClipScorerEngine

    rng = np.random.default_rng(0)
    # Different sizes and modes: the processor's resize/crop/convert must match too.
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
              for h, w in ((40, 48), (32, 32), (64, 33))] + [Image.new("L", (50, 40), 128)]
    reference = ClipScorerEngine.load(tiny_clip, device="cpu", dtype="float32", batch_size=3)
    engine = OrtClipScorerEngine.load(exports["fp32"], device="cpu", batch_size=3)
    assert (engine.dim, engine.max_text_tokens, engine.device, engine.dtype) == \
        (reference.dim, reference.max_text_tokens, "cpu", "fp32")
    long_text = " ".join(["red apple"] * 60)  # past max_text_tokens: truncated, not an error
    for got, expected in ((engine.embed_images(images), reference.embed_images(images)),
                          (engine.embed_texts([*TEXTS, long_text]),
                           reference.embed_texts([*TEXTS, long_text]))):
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert graph.max_abs_rel_error(got, expected)[1] < 1e-4
    assert engine.embed_images([]).shape == (0, engine.dim)
    assert engine.embed_texts([]).shape == (0, engine.dim)


def test_export_manifest(exports, tiny_clip):
    from t2i_sdk.bundle.hashing import sha256_file

    for precision, folder in exports.items():
        manifest = json.loads((folder / "onnx_export.json").read_text())
        assert manifest["model"] == {"projection_dim": 32, "max_position_embeddings": 77,
                                     "image_size": 32}
        text, vision = manifest["graphs"]["text_model"], manifest["graphs"]["vision_model"]
        assert (text["path"], vision["path"]) == ("text_model/model.onnx",
                                                  "vision_model/model.onnx")
        assert text["inputs"] == ["input_ids", "attention_mask"]
        assert text["outputs"] == ["text_embeds"]
        assert (vision["inputs"], vision["outputs"]) == (["pixel_values"], ["image_embeds"])
        assert text["dtype"] == vision["dtype"] == precision
        assert text["opset"] == graph.DEFAULT_OPSET
        assert vision["source_sha256"]["model.safetensors"] == \
            sha256_file(tiny_clip / "model.safetensors")
        for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json"):
            assert (folder / name).read_bytes() == (tiny_clip / name).read_bytes()
        leftovers = {p.name for p in folder.rglob("*")} - {p.name for p in tiny_clip.iterdir()}
        assert leftovers == {"onnx_export.json", "text_model", "vision_model", "model.onnx"}


def test_reexport_keeps_unchanged_graphs(exports, tiny_clip):
    folder = exports["fp32"]
    graph_file = folder / "vision_model" / "model.onnx"
    before = graph_file.stat().st_mtime_ns
    lines = []
    export_clip(tiny_clip, folder, progress=lines.append)
    assert "vision_model: unchanged, kept" in lines and "text_model: unchanged, kept" in lines
    assert graph_file.stat().st_mtime_ns == before


class _Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 48)

    def forward(self, x):
        return torch.nn.functional.gelu(self.linear(x))


def test_graph_steps_with_external_data(tmp_path, monkeypatch):
    """Past the threshold every step writes one ``.data`` file; results still match."""
    import onnx

    monkeypatch.setattr(graph, "EXTERNAL_DATA_THRESHOLD", 1024)
    module = _Affine().eval()
    x = torch.randn(3, 64)
    expected = module(x).detach().numpy()
    exported = graph.export_onnx(module, (x,), tmp_path / "fp32.onnx", input_names=["x"],
                                 output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    optimized = graph.optimize_graph(exported, tmp_path / "opt.onnx")
    half = graph.to_fp16(optimized, tmp_path / "fp16.onnx")
    int8 = graph.quantize_int8(optimized, tmp_path / "int8.onnx")
    for path, tolerance in ((exported, 1e-5), (optimized, 1e-5), (half, 1e-2), (int8, 5e-2)):
        assert graph.model_files(path) == [path, path.with_name(path.name + ".data")], path
        onnx.checker.check_model(str(path))
        got = OrtModel.load(path, device="cpu").run({"x": x.numpy()})["y"]
        assert graph.max_abs_rel_error(got, expected)[1] < tolerance, path
    assert not list(tmp_path.glob(".onnx-tmp-*"))  # scratch folders cleaned up


def test_small_graph_is_self_contained_and_fp16_keeps_fp32_io(tmp_path):
    import onnx

    module = _Affine().eval()
    x = torch.randn(2, 64)
    path = graph.export_onnx(module, (x,), tmp_path / "m.onnx", input_names=["x"],
                             output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    assert graph.model_files(path) == [path]
    half = onnx.load(str(graph.to_fp16(path, tmp_path / "h.onnx")))
    float_ = onnx.TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [float_]
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [float_]
    assert {t.data_type for t in half.graph.initializer} == {onnx.TensorProto.FLOAT16}
    model = OrtModel.load(tmp_path / "h.onnx", device="cpu")
    assert (model.input_names, model.output_names) == (["x"], ["y"])
    got = model.run({"x": np.random.default_rng(0).standard_normal((7, 64))})  # float64 cast
    assert got["y"].shape == (7, 48) and got["y"].dtype == np.float32


def test_max_abs_rel_error():
    ref = np.array([[2.0, -4.0]])
    assert graph.max_abs_rel_error(np.array([[2.5, -4.0]]), ref) == (0.5, 0.125)
    assert graph.max_abs_rel_error(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    with pytest.raises(ValueError):
        graph.max_abs_rel_error(np.zeros(3), np.zeros(4))


def test_ort_model_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.onnx"):
        OrtModel.load(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="junk.onnx"):
        OrtModel.load(junk)
    with pytest.raises(ValueError, match="unknown device"):
        OrtModel.load(junk, device="tpu")


def test_ort_model_feeds_are_checked(exports):
    model = OrtModel.load(exports["fp32"] / "vision_model" / "model.onnx", device="cpu")
    assert model.device == "cpu" and model.providers == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="pixel_values"):
        model.run({"pixels": np.zeros((1, 3, 32, 32), np.float32)})
    bound = model.run_bound({"pixel_values": np.zeros((2, 3, 32, 32), np.float32)})
    plain = model.run({"pixel_values": np.zeros((2, 3, 32, 32), np.float32)})
    assert np.array_equal(bound["image_embeds"].numpy(), plain["image_embeds"])
