"""llama.cpp model parameters that llama-cpp-python's ``Llama`` does not take as arguments.

``use_extra_bufts`` (llama.cpp's extra CPU buffer types: AMX tiles and weight repacking) is
turned off. With it on, llama-cpp-python 0.3.36 built on an AMX CPU (Xeon, Sapphire Rapids
and later) crashes in its first decode (segmentation fault) on every quantised model we export:
SmolLM2-135M q8_0 and q4_k, the tiny test Llama at q8_0 and q4_0 (f16 runs). Off, they all
run (SmolLM2 q8_0 on one thread: 30 tokens in 0.7 s). Off on every CPU, not only AMX ones:
which buffer type crashes was not isolated, and a crash is worse than a slower matmul (the
repacked layouts speed up prompt evaluation on other x86 and ARM CPUs; not measured here).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()  # the defaults are swapped module-wide while one model loads


@contextmanager
def without_extra_buffer_types() -> Iterator[None]:
    """Models loaded by ``llama_cpp.Llama`` inside this block keep plain CPU weight buffers."""
    import llama_cpp.llama_cpp as api  # the module ``Llama`` reads its defaults from

    with _LOCK:
        defaults = api.llama_model_default_params

        def plain_buffers():
            params = defaults()
            params.use_extra_bufts = False
            return params

        api.llama_model_default_params = plain_buffers
        try:
            yield
        finally:
            api.llama_model_default_params = defaults
