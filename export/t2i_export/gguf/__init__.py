"""GGUF export of the rewriter / planner causal LMs (Llama and Qwen2 families) for llama.cpp.

Needs the ``gguf`` package (the ``llama`` extra); imported only when this package is. The
K-quant types also need llama-cpp-python (same extra): llama.cpp's quantizer makes them.
"""
from t2i_export.gguf.convert import convert_to_gguf
from t2i_export.gguf.quantize import OUT_TYPES

__all__ = ["OUT_TYPES", "convert_to_gguf"]
