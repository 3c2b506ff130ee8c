"""K-quant GGUF files (q4_k, q5_k, q6_k) made by llama.cpp's own quantizer.

gguf-py only dequantises K-quants, so we do what llama.cpp users do: convert to f16, then run
``llama-quantize``, here as its C API ``llama_model_quantize`` through llama-cpp-python (the
``llama`` extra). llama.cpp picks the per-tensor mix (Q4_K_M keeps some attn_v / ffn_down and
output.weight in Q6_K) and falls back to other types for rows that are not a multiple of 256
(QK_K), logging a warning.
"""
from __future__ import annotations

import ctypes
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from t2i_export.gguf.quantize import K_QUANT_TYPES
from t2i_sdk.scratch import scratch_path
from t2i_sdk.errors import T2IError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 't2i-sdk[llama]'"
# enum ggml_log_level in ggml.h (llama-cpp-python's _logger.py documents an older numbering).
_LOG_WARN, _LOG_ERROR, _LOG_CONT = 3, 4, 5


class LlamaQuantizeError(T2IError, RuntimeError):
    """llama-cpp-python is not installed, or llama.cpp's quantizer failed."""


def require_llama_cpp():
    """The ``llama_cpp`` module, or :class:`LlamaQuantizeError` naming the extra to install."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise LlamaQuantizeError(
            f"K-quant GGUF types are made by llama.cpp's quantizer, which needs llama-cpp-python "
            f"({exc}); install it with: {INSTALL_HINT}") from exc
    return llama_cpp


def quantize_gguf(src: Path, out_path: Path, out_type: str, *, tmp_path: Path | None = None) -> Path:
    """Quantise the f16 / f32 GGUF ``src`` to ``out_type`` ("q4_k" | "q5_k" | "q6_k") at
    ``out_path``. llama.cpp writes ``tmp_path`` (default ``.{name}.{pid}.partial`` beside
    ``out_path``), renamed into place only once it reports success, so a failure never leaves
    ``out_path`` behind. This is one long C call that Ctrl-C cannot stop:
    :func:`t2i_export.gguf.quantize_child.quantize_in_child` runs it in a child process."""
    llama_cpp = require_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(K_QUANT_TYPES[out_type])
    params.nthread = _usable_cpus()
    out_path = Path(out_path)
    tmp_path = Path(tmp_path) if tmp_path is not None else scratch_path(out_path, "partial")
    try:
        llama_cpp.llama_backend_init()  # ggml's fp16 tables; idempotent
        with _llama_log_to_logger(llama_cpp) as errors:
            rc = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(tmp_path),
                                                ctypes.byref(params))
        if rc != 0:
            reason = " ".join(errors) or "no reason logged"
            raise LlamaQuantizeError(f"llama.cpp could not quantise {src} to {out_type} for "
                                     f"{out_path} (llama_model_quantize returned {rc}): {reason}")
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return out_path


@contextmanager
def _llama_log_to_logger(llama_cpp):
    """Send llama.cpp's log to this module's logger while quantising, yielding its error lines.

    Otherwise llama-cpp-python prints ~4 lines per tensor to stderr, and the reason a
    quantisation failed is only logged, never returned. Its own callback is put back after.
    """
    errors: list[str] = []
    last_level = [0]

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, _user_data) -> None:
        level = last_level[0] if level == _LOG_CONT else level
        last_level[0] = level
        line = text.decode("utf-8", "replace").strip()
        if not line:
            return
        if level == _LOG_ERROR:
            errors.append(line)
        logger.log(logging.WARNING if level >= _LOG_WARN else logging.DEBUG, "llama.cpp: %s", line)

    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
    try:
        yield errors
    finally:
        previous = getattr(getattr(llama_cpp, "_logger", None), "llama_log_callback", None)
        llama_cpp.llama_log_set(previous, ctypes.c_void_p(0))


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset / cgroup affinity), not the machine's count.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
