"""Write several files all-or-nothing: every one is new, or every one is as it was before.

Each file's bytes go to a hidden temp file beside it first (``.{name}.{pid}.tmp``); only when
all are written is each renamed into place, an existing file being set aside
(``.{name}.{pid}.old``) just before. If any step fails (Ctrl-C included), the files already
renamed in are removed and the set-aside ones put back, and the temp files are deleted.
Leftovers of a writer killed outright (``kill -9``) are swept by the next write of the same
names (:func:`t2i_sdk.scratch.sweep_stale`).
"""
from __future__ import annotations

import os
from pathlib import Path

from t2i_sdk.bundle.atomic import fsync_dir
from t2i_sdk.scratch import scratch_path, sweep_stale

FILE_MODE = 0o644


def write_file_set(files: dict[Path, bytes]) -> list[Path]:
    """Write ``{path: data}`` so that either all files or none end up changed; returns the
    paths. The paths must be distinct and their folders exist."""
    for path in files:
        sweep_stale(Path(path))
    temps: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            temps[Path(path)] = _write_temp(Path(path), data)
        backups = _place_all(temps)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)  # those renamed into place are already gone
    for backup in backups:
        backup.unlink(missing_ok=True)
    for folder in {path.parent for path in temps}:
        fsync_dir(folder)
    return list(temps)


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = scratch_path(path, "tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _place_all(temps: dict[Path, Path]) -> list[Path]:
    """Rename every temp into place; on failure undo every rename made. Returns the backups."""
    placed: list[tuple[Path, Path | None]] = []
    try:
        for path, tmp in temps.items():
            backup = _set_aside(path)
            placed.append((path, backup))
            _place(tmp, path)
    except BaseException:
        for path, backup in reversed(placed):
            if backup is not None:
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)
        raise
    return [backup for _, backup in placed if backup is not None]


def _set_aside(path: Path) -> Path | None:
    """Rename an existing ``path`` to its backup name; None when there is nothing there."""
    if not (path.exists() or path.is_symlink()):
        return None
    backup = scratch_path(path, "old")
    os.replace(path, backup)
    return backup


def _place(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)

