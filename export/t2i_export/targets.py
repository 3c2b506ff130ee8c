"""Checks on an export's output path, made before any work: one clear error, nothing written.

A file output (``gguf``) that exists is replaced only with ``--force``. A folder output
(``onnx``, ``tensorrt``) may be an earlier export of the same command, which a re-run updates
(skipping unchanged components); any other non-empty folder needs ``--force``.
"""
from __future__ import annotations

from pathlib import Path

from t2i_export.stamps import STAMP_NAME
from t2i_sdk.errors import InputError


def check_file_target(path: str | Path, *, force: bool) -> Path:
    """``path`` as a Path if a file may be written there."""
    path = Path(path)
    _check_parent(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; name the output file (e.g. {path / 'model.gguf'})")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"{path} already exists; pass --force to replace it")
    return path


def check_folder_target(path: str | Path, *, force: bool) -> Path:
    """``path`` as a Path if export folders may be written into it."""
    path = Path(path)
    _check_parent(path)
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder")
    if path.is_dir() and not force and not is_earlier_export(path) and any(path.iterdir()):
        raise InputError(f"{path} is a folder that holds no earlier t2i-export output; pass "
                         f"--force to write into it")
    return path


def check_bundle_target(out: str | Path, *, force: bool) -> Path:
    """``out`` as a Path if an exported bundle may be written there (replacing it: ``force``)."""
    out = Path(out)
    _check_parent(out)
    if not (out.exists() or out.is_symlink()):
        return out
    if not force:
        raise InputError(f"{out} already exists; pass --force to replace it")
    if out.is_symlink() or not out.is_dir():
        raise InputError(f"{out} exists and is not a folder; refusing to replace it")
    return out


def is_earlier_export(folder: Path) -> bool:
    """True when ``folder`` holds a component folder a t2i-export run finished."""
    try:
        return any((child / STAMP_NAME).is_file() for child in folder.iterdir())
    except OSError:
        return False


def _check_parent(path: Path) -> None:
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{parent} is not a folder")
