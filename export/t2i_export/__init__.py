"""t2i-export: compile a bundle's components to ONNX / TensorRT engines and its LLMs to GGUF."""
