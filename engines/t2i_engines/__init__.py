"""Engines run one model each. Backends import their heavy libraries only when used:
``t2i_engines.pytorch`` (diffusers / transformers); onnxruntime, tensorrt and llama.cpp follow."""
