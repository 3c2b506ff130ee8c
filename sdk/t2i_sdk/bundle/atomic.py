"""All-or-nothing writes: a crash leaves the old file/folder or the new one, never half of one."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from t2i_sdk.errors import BundleError

FILE_MODE = 0o644  # mkstemp makes 0600 files; bundles are meant to be shared read-only
DIR_MODE = 0o755


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """``atomic_write_bytes`` for text."""
    atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def atomic_directory(final_dir: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder next to ``final_dir``; move it to ``final_dir`` on success.

    The temp folder is named ``.{name}.tmp-XXXX`` (hidden, so it never looks like a finished
    result). If the block raises (Ctrl-C included) it is removed and ``final_dir`` is untouched.
    An existing ``final_dir`` raises ``BundleError`` unless ``overwrite``; with ``overwrite`` the
    old folder is renamed aside, the new one renamed in, then the old one deleted.
    """
    final_dir = Path(final_dir)
    refuse_existing(final_dir, overwrite)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        refuse_existing(final_dir, overwrite)  # it may have appeared while we were building
        old = final_dir.parent / f".{final_dir.name}.old-{uuid.uuid4().hex[:8]}"
        move_into_place(tmp, final_dir, old=old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def refuse_existing(final_dir: Path, overwrite: bool, *,
                    how: str = "pass overwrite=True") -> None:
    """BundleError if ``final_dir`` exists and may not be replaced (``how`` says how to allow
    it), or exists and is not a folder."""
    if not (final_dir.exists() or final_dir.is_symlink()):
        return
    if not overwrite:
        raise BundleError(f"{final_dir}: already exists ({how} to replace it)")
    if final_dir.is_symlink() or not final_dir.is_dir():
        raise BundleError(f"{final_dir}: exists and is not a folder; refusing to replace it")


def move_into_place(tmp: Path, final_dir: Path, *, old: Path) -> None:
    """Rename ``tmp`` to ``final_dir``; an existing ``final_dir`` is renamed to ``old`` first,
    put back if the swap fails, and deleted once it succeeded."""
    if not final_dir.exists():
        os.rename(tmp, final_dir)  # fails rather than merges if a non-empty folder raced in
        fsync_dir(final_dir.parent)
        return
    shutil.rmtree(old, ignore_errors=True)
    os.rename(final_dir, old)
    try:
        os.rename(tmp, final_dir)
    except BaseException:
        os.rename(old, final_dir)  # put the previous version back rather than leave nothing
        raise
    fsync_dir(final_dir.parent)
    shutil.rmtree(old, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Persist a rename; best effort (not every OS/filesystem lets a folder be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
