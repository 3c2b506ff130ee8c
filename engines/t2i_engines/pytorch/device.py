"""Torch runtime settings from user-facing strings: device ("auto", "cuda", ...), dtype
("float16", ...), and whether loading shows progress bars."""
from __future__ import annotations

import logging
from contextlib import contextmanager

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float32", "float16", "bfloat16")


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` if available, else ``"mps"``, else ``"cpu"``.

    Explicit names pass through (``"cuda:1"`` included); unknown names raise ValueError.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device.split(":", 1)[0] not in DEVICES[1:]:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    return device


def resolve_dtype(dtype: str, device: str):
    """Map a dtype name to a ``torch.dtype``. ``"auto"``: float16 on cuda/mps, float32 on cpu
    (half precision on CPU is slow and poorly supported). Unknown names raise ValueError."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        accelerated = device.split(":", 1)[0] in ("cuda", "mps")
        return torch.float16 if accelerated else torch.float32
    return getattr(torch, dtype)


class _DropTorchvisionFallbackNotice(logging.Filter):
    # transformers 5 logs this whenever a CLIP/SigLIP image processor is first touched without
    # torchvision; the PIL fallback is exact for our use, and a user cannot act on the notice.
    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


class _DropOptionalKernelNotice(logging.Filter):
    # bitsandbytes (installed by the `train` extra) warns on import, on any CPU, that an optional
    # 4-bit kernel package is missing; diffusers/transformers import it just to probe for it.
    def filter(self, record: logging.LogRecord) -> bool:
        return "from kernels-community" not in record.getMessage()


logging.getLogger("transformers.utils.import_utils").addFilter(_DropTorchvisionFallbackNotice())
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_DropOptionalKernelNotice())


@contextmanager
def loading_progress(enabled: bool):
    """Show or hide diffusers' and transformers' loading bars and their info/warning chatter
    (deprecation and torchvision-fallback notices a desktop app's user cannot act on) inside
    the block, then restore the previous process-wide settings."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    before = [(lib.is_progress_bar_enabled(), lib.get_verbosity()) for lib in libraries]
    for lib in libraries:
        lib.enable_progress_bar() if enabled else lib.disable_progress_bar()
        if not enabled:
            lib.set_verbosity_error()
    try:
        yield
    finally:
        for lib, (was_enabled, verbosity) in zip(libraries, before):
            lib.enable_progress_bar() if was_enabled else lib.disable_progress_bar()
            lib.set_verbosity(verbosity)
