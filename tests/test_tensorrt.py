"""TensorRT build + runtime: the parts that need no GPU run everywhere (availability errors,
compatibility checks, profiles, metadata); building and running engines is marked ``gpu``."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from t2i_engines.tensorrt.runtime import (EngineMismatch, TensorRTUnavailable,  # noqa: E402
                                          TrtModel, check_compatible, metadata_path,
                                          read_metadata)
from t2i_export.tensorrt.build import (Profile, build_engine, default_profiles,  # noqa: E402
                                       engine_metadata)

REBUILD = "t2i-export tensorrt bundles/tiny bundles/tiny-trt"


def _gpu_ready() -> bool:
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime / TensorRT parser we support
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _identity_graph_onnx(path: Path) -> Path:
    """Four inputs: a latent, an RGB image, token ids and a fixed-size tensor; Identity each."""
    inputs = [
        helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 4, "height", "width"]),
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"]),
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("fixed", TensorProto.FLOAT, [2, 5]),
    ]
    outputs = [helper.make_tensor_value_info(
        f"{v.name}_out", v.type.tensor_type.elem_type,
        [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in inputs]
    nodes = [helper.make_node("Identity", [v.name], [f"{v.name}_out"]) for v in inputs]
    return _save(helper.make_graph(nodes, "identity", inputs, outputs), path)


def _conv_onnx(path: Path) -> Path:
    """out = relu(conv3x3(sample)) * 0.5: a tiny dynamic-shape graph with real weights."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.2,
                                     "weight")
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    nodes = [helper.make_node("Conv", ["sample", "weight"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("Mul", ["relu", "half"], ["out"])]
    dims = ["batch", 4, "height", "width"]
    graph = helper.make_graph(
        nodes, "conv", [helper.make_tensor_value_info("sample", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)], [weight, half])
    return _save(graph, path)


# --- availability: a clear error, and nothing written -------------------------------------

def test_build_without_tensorrt_raises_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    src = _identity_graph_onnx(tmp_path / "model.onnx")
    out_dir = tmp_path / "engines"
    out_dir.mkdir()
    with pytest.raises(TensorRTUnavailable) as err:
        build_engine(src, out_dir / "model.plan", timing_cache=out_dir / "timing.cache")
    assert "TensorRT" in str(err.value) and "pip install 't2i-sdk[gpu]'" in str(err.value)
    assert list(out_dir.iterdir()) == []


def test_build_without_gpu_raises_before_writing(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    src = _identity_graph_onnx(tmp_path / "model.onnx")
    out_dir = tmp_path / "engines"
    with pytest.raises(TensorRTUnavailable, match="CUDA GPU"):
        build_engine(src, out_dir / "sub" / "model.plan", timing_cache=out_dir / "t.cache")
    assert not out_dir.exists()


def test_load_without_tensorrt_raises(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"not a plan")
    metadata_path(plan).write_text(json.dumps(_meta(tmp_path)))
    with pytest.raises(TensorRTUnavailable, match="not installed"):
        TrtModel.load(plan)
    with pytest.raises(ValueError, match="only on CUDA"):
        TrtModel.load(plan, device="cpu")


def test_load_checks_compatibility_before_deserializing(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.3.0"

    def never(*args, **kwargs):
        raise AssertionError("deserialization must not be attempted")

    fake.Runtime = fake.Logger = never
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan built elsewhere")
    metadata_path(plan).write_text(json.dumps(_meta(tmp_path)))  # 10.3.0, sm 8.9
    with pytest.raises(EngineMismatch) as err:
        TrtModel.load(plan)
    assert "8.9" in str(err.value) and "9.0" in str(err.value)
    assert REBUILD in str(err.value)  # taken from the metadata


def test_load_without_metadata_names_the_rebuild_command(tmp_path):
    plan = tmp_path / "model.plan"
    with pytest.raises(ValueError, match="no TensorRT plan"):
        TrtModel.load(plan)
    plan.write_bytes(b"plan")
    with pytest.raises(EngineMismatch, match="t2i-export tensorrt <src> <out>"):
        TrtModel.load(plan)


# --- compatibility --------------------------------------------------------------------------

def _meta(tmp_path, **overrides) -> dict:
    src = tmp_path / "meta_src.onnx"
    if not src.exists():
        _identity_graph_onnx(src)
    meta = engine_metadata(trt_version="10.3.0", gpu_name="NVIDIA GeForce RTX 4090",
                           compute_capability=(8, 9), fp16=True, profile=None, onnx_path=src,
                           inputs=[], outputs=[], workspace_gb=4.0, rebuild_cmd=REBUILD)
    return {**meta, **overrides}


def test_check_compatible_accepts_the_building_setup(tmp_path):
    assert check_compatible(_meta(tmp_path), trt_version="10.3.0", compute_capability=(8, 9),
                            rebuild_cmd=REBUILD) is None


def test_check_compatible_rejects_another_tensorrt_version(tmp_path):
    with pytest.raises(EngineMismatch) as err:
        check_compatible(_meta(tmp_path), trt_version="10.7.0", compute_capability=(8, 9),
                         rebuild_cmd=REBUILD)
    message = str(err.value)
    assert "TensorRT version differs" in message
    assert "10.3.0" in message and "10.7.0" in message and REBUILD in message


def test_check_compatible_rejects_another_gpu_architecture(tmp_path):
    with pytest.raises(EngineMismatch) as err:
        check_compatible(_meta(tmp_path), trt_version="10.3.0", compute_capability=(9, 0),
                         rebuild_cmd=REBUILD)
    message = str(err.value)
    assert "compute capability differs" in message
    assert "8.9" in message and "9.0" in message and "RTX 4090" in message
    assert REBUILD in message


def test_check_compatible_reports_both_differences(tmp_path):
    with pytest.raises(EngineMismatch, match="TensorRT version and compute capability differ"):
        check_compatible(_meta(tmp_path), trt_version="10.0.1", compute_capability=(8, 6),
                         rebuild_cmd=REBUILD)


def test_check_compatible_rejects_metadata_without_versions():
    with pytest.raises(EngineMismatch, match="unknown"):
        check_compatible({}, trt_version="10.3.0", compute_capability=(8, 9),
                         rebuild_cmd=REBUILD)


# --- profiles -------------------------------------------------------------------------------

def test_default_profiles_from_symbolic_dims(tmp_path):
    profile = default_profiles(_identity_graph_onnx(tmp_path / "m.onnx"), batch=(1, 2, 4),
                               resolution=(256, 512, 1024))
    assert profile.min["sample"] == (1, 4, 32, 32)  # latent: pixels / 8
    assert profile.opt["sample"] == (2, 4, 64, 64)
    assert profile.max["sample"] == (4, 4, 128, 128)
    assert profile.min["image"] == (1, 3, 256, 256)  # 3 channels: pixel space
    assert profile.max["image"] == (4, 3, 1024, 1024)
    assert (profile.min["input_ids"], profile.max["input_ids"]) == ((1, 1), (4, 77))
    assert profile.min["fixed"] == profile.opt["fixed"] == profile.max["fixed"] == (2, 5)


def test_default_profiles_dims_override_and_unknown_symbols(tmp_path):
    src = _identity_graph_onnx(tmp_path / "m.onnx")
    profile = default_profiles(src, dims={"tokens": (77, 77, 77)})
    assert profile.min["input_ids"] == (1, 77) and profile.max["input_ids"] == (8, 77)
    x = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", "objects", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "objects", 4])
    odd = _save(helper.make_graph([helper.make_node("Identity", ["boxes"], ["y"])], "g", [x], [y]),
                tmp_path / "odd.onnx")
    with pytest.raises(ValueError, match="'objects'"):
        default_profiles(odd)
    assert default_profiles(odd, dims={"objects": (1, 8, 30)}).max["boxes"] == (8, 30, 4)
    with pytest.raises(ValueError, match="min <= opt <= max"):
        default_profiles(src, batch=(4, 2, 8))


def test_fp16_graph_for_strongly_typed_tensorrt(tmp_path):
    """TensorRT 11 has no FP16 builder flag: the build parses an fp16 copy of an fp32 graph."""
    pytest.importorskip("onnxruntime")
    from t2i_export.tensorrt.build import _graph_to_parse

    src = _conv_onnx(tmp_path / "conv.onnx")
    scratch = tmp_path / "out"
    scratch.mkdir()
    with _graph_to_parse(src, scratch, True) as graph:
        assert graph != src and graph.is_file()
        model = onnx.load(str(graph))
        assert {t.data_type for t in model.graph.initializer} == {TensorProto.FLOAT16}
        assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # IO fp32
        with _graph_to_parse(graph, scratch, True) as again:  # already fp16: used as is
            assert again == graph
    assert list(scratch.iterdir()) == []  # the scratch copy is gone after parsing
    with _graph_to_parse(src, scratch, False) as graph:
        assert graph == src


# --- metadata -------------------------------------------------------------------------------

def test_metadata_round_trip(tmp_path):
    src = _identity_graph_onnx(tmp_path / "m.onnx")
    profile = default_profiles(src)
    meta = engine_metadata(
        trt_version="10.3.0", gpu_name="NVIDIA H100", compute_capability=(9, 0), fp16=True,
        profile=profile, onnx_path=src, workspace_gb=2.0,
        inputs=[{"name": "sample", "dtype": "float32", "shape": [-1, 4, -1, -1]}],
        outputs=[{"name": "sample_out", "dtype": "float32", "shape": [-1, 4, -1, -1]}])
    plan = tmp_path / "m.plan"
    metadata_path(plan).write_text(json.dumps(meta))
    assert metadata_path(plan).name == "m.plan.json"
    loaded = read_metadata(plan)
    assert loaded == json.loads(json.dumps(meta))
    assert Profile.from_json(loaded["profile"]) == profile
    import hashlib
    assert loaded["source_onnx"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    check_compatible(loaded, trt_version="10.3.0", compute_capability=(9, 0), rebuild_cmd=REBUILD)


def test_metadata_with_unknown_schema_is_refused(tmp_path):
    plan = tmp_path / "m.plan"
    metadata_path(plan).write_text(json.dumps({**_meta(tmp_path), "schema": 99}))
    with pytest.raises(EngineMismatch, match="schema"):
        read_metadata(plan)


# --- on a GPU -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv_engine(tmp_path_factory):
    if not _gpu_ready():
        pytest.skip("needs tensorrt and a CUDA GPU")
    root = tmp_path_factory.mktemp("trt")
    src = _conv_onnx(root / "conv.onnx")
    profile = default_profiles(src, batch=(1, 2, 4), resolution=(64, 128, 256))
    plan = build_engine(src, root / "conv.plan", fp16=True, profile=profile,
                        timing_cache=root / "timing.cache", workspace_gb=1.0)
    return src, plan


@pytest.mark.parametrize("shape", [(1, 4, 8, 8), (3, 4, 16, 24)])
@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready(), reason="needs tensorrt and a CUDA GPU")
def test_engine_matches_onnxruntime(conv_engine, shape):
    import onnxruntime as ort

    src, plan = conv_engine
    meta = read_metadata(plan)
    assert meta["fp16"] is True and meta["inputs"][0]["name"] == "sample"
    assert (plan.parent / "timing.cache").stat().st_size > 0
    model = TrtModel.load(plan)
    assert model.input_names == ["sample"] and model.output_names == ["out"]
    assert model.input_dtypes == {"sample": np.float32} and model.device.startswith("cuda:")
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(
        None, {"sample": x})[0]
    got = model.run({"sample": x})["out"]
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-2


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready(), reason="needs tensorrt and a CUDA GPU")
def test_cuda_graph_replay_matches_eager(conv_engine):
    import torch

    _, plan = conv_engine
    eager = TrtModel.load(plan)
    graphed = TrtModel.load(plan, static_shapes=True)
    for seed in range(4):  # call 2 captures, calls 3+ replay with new data
        x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(seed)).cuda()
        want = eager.run_torch({"sample": x})["out"]
        got = graphed.run_torch({"sample": x})["out"]
        assert got.is_cuda and torch.equal(got, want)
    assert graphed._graphs.graph is not None
    other = torch.randn(1, 4, 8, 8, device="cuda")  # a new shape: eager again
    assert torch.equal(graphed.run_torch({"sample": other})["out"],
                       eager.run_torch({"sample": other})["out"])
    with pytest.raises(ValueError, match="optimization profile"):
        eager.run_torch({"sample": torch.zeros(8, 4, 8, 8, device="cuda")})
