"""Thread settings are chosen at load, overridable, and reach every engine."""
from __future__ import annotations

import os

import pytest

from t2i_engines import threads
from t2i_sdk import InputError, Pipeline


@pytest.fixture()
def restore_threads():
    torch = pytest.importorskip("torch")
    before, settings = torch.get_num_threads(), threads._current
    yield
    torch.set_num_threads(before)
    threads._current = settings


def test_default_is_half_the_cores_and_sleeping_waits():
    settings = threads.default_threads()
    assert settings.threads == max(1, min(threads.MAX_THREADS, (os.cpu_count() or 2) // 2))
    assert settings.spin is False


def test_from_pretrained_applies_threads_to_torch_and_onnxruntime(tiny_bundle, restore_threads,
                                                                  tmp_path):
    import torch

    Pipeline.from_pretrained(tiny_bundle, device="cpu", calibrate=False, threads=3, spin=True,
                             cache_dir=tmp_path)
    assert torch.get_num_threads() == 3
    assert threads.current() == threads.CpuThreads(3, spin=True)
    ort = pytest.importorskip("onnxruntime")
    from t2i_engines.onnxruntime import session as ort_session

    captured = {}
    real = ort.InferenceSession

    def spy(path, options, providers):
        captured["threads"] = options.intra_op_num_threads
        captured["spin"] = options.get_session_config_entry("session.intra_op.allow_spinning")
        return real(path, options, providers=providers)

    onnx = pytest.importorskip("onnx")
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "relu.onnx")
    ort_session.ort.InferenceSession = spy
    try:
        ort_session.OrtModel.load(tmp_path / "relu.onnx", device="cpu")
    finally:
        ort_session.ort.InferenceSession = real
    assert captured == {"threads": 3, "spin": "1"}

    Pipeline.from_pretrained(tiny_bundle, device="cpu", calibrate=False, threads=1,
                             cache_dir=tmp_path)
    assert torch.get_num_threads() == 1 and threads.current().spin is False


@pytest.mark.parametrize("kwargs", [dict(threads=0), dict(threads=2.5), dict(threads=True),
                                    dict(spin="yes")])
def test_bad_thread_settings_are_one_input_error(tiny_bundle, kwargs):
    with pytest.raises(InputError, match="threads|spin"):
        Pipeline.from_pretrained(tiny_bundle, device="cpu", calibrate=False, **kwargs)
