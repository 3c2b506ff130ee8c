"""Which runtime executes an exported graph: onnxruntime on the ``.onnx`` file, or the TensorRT
engine ``t2i-export tensorrt`` built beside it (``<graph>.plan``). Both runners offer
``run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]``, so one engine class serves both."""
from __future__ import annotations

from pathlib import Path

RUNTIMES = ("onnxruntime", "tensorrt")


def load_graph(onnx_path: Path, *, device: str, runtime: str = "onnxruntime"):
    """A runner for one exported graph on ``device`` with ``runtime`` (one of RUNTIMES)."""
    if runtime == "tensorrt":
        from t2i_engines.tensorrt.runtime import TrtModel
        return TrtModel.load(Path(onnx_path).with_suffix(".plan"), device=device)
    if runtime != "onnxruntime":
        raise ValueError(f"unknown graph runtime {runtime!r}; expected one of {RUNTIMES}")
    from t2i_engines.onnxruntime.session import OrtModel
    return OrtModel.load(onnx_path, device=device)
