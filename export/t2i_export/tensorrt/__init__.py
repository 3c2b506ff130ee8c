"""``t2i-export tensorrt``: TensorRT plans from the exported ONNX graphs (see :mod:`.build`).

Importing this package needs neither ``tensorrt`` nor a GPU; building does."""
from t2i_export.tensorrt.build import (EngineBuildError, Profile, TensorRTUnavailable,
                                       build_engine, default_profiles, engine_metadata)

__all__ = ["EngineBuildError", "Profile", "TensorRTUnavailable", "build_engine",
           "default_profiles", "engine_metadata"]
