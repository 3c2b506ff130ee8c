"""onnxruntime engines: the same interfaces as the torch engines, running exported ONNX graphs."""
