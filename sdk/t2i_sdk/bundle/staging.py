"""A private folder holding exactly the files ``bundle.json`` lists for one component.

Loaders (``from_pretrained``, onnxruntime, llama.cpp) read whatever sits in the folder they
are given: an unlisted ``special_tokens_map.json`` or ``added_tokens.json`` beside a bundle's
tokenizer would change it unverified. So a component is loaded from a staging folder, made
per load in the system temp dir (mode 0700) and removed once the engine is built; no engine
reads its files again after ``load`` (weights live in memory or in an mmap that keeps its
file alive).

Each listed file is staged, in order of preference, as:

- a hard link to the verified file: same bytes, no copy, nothing pointing back into the bundle;
- a copy, when hard links fail (another filesystem, ``protected_hardlinks``) and the file is at
  most ``COPY_MAX_BYTES``: configs and tokenizer files, the ones loaders use to find siblings,
  then sit in the staging folder itself even for a loader that resolves symlinks;
- a symlink to the file's resolved real path inside the component, for larger files (weights,
  which are read, never used to look around): copying gigabytes would cost the load its time.

Every listed path is checked to stay inside its component folder, symlinks resolved.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from t2i_sdk.bundle.hashing import resolve_member
from t2i_sdk.errors import BundleError
from t2i_sdk.scratch import pid_alive

COPY_MAX_BYTES = 64 << 20  # tokenizer.json of large vocabularies stays under this; weights don't
STAGE_PREFIX = "t2i-stage-"


def stage_files(root: Path, files: Iterable[str], dest: Path) -> dict[str, str]:
    """Put each ``files`` relpath of ``root`` at the same relpath under ``dest``.

    Returns ``{relpath: "link" | "copy" | "symlink"}``, how each file was staged. Raises
    ``BundleError`` for a path that escapes ``root`` (``..``, absolute, symlink out) or is
    not a regular file.
    """
    how = {}
    for rel in files:
        real = resolve_member(root, rel).resolve()
        if not real.is_file():
            raise BundleError(f"{root / rel}: listed file is missing or not a regular file")
        target = dest / PurePosixPath(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        how[rel] = _place(real, target)
    return how


@contextmanager
def staged_component(root: Path, files: Iterable[str]) -> Iterator[Path]:
    """A fresh private folder with exactly ``files`` of component folder ``root``; removed
    on exit (see ``stage_files``)."""
    sweep_stale_stages(Path(tempfile.gettempdir()))
    dest = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-"))
    try:
        stage_files(Path(root), files, dest)
        yield dest
    finally:
        # ignore_errors: a platform that cannot delete a file still mapped (Windows) keeps it
        shutil.rmtree(dest, ignore_errors=True)


def sweep_stale_stages(temp_dir: Path) -> list[Path]:
    """Remove staging folders of processes that are gone (killed mid-load); returns them.
    Hard links there would otherwise keep deleted bundle files' space in use."""
    swept = []
    for entry in temp_dir.glob(f"{STAGE_PREFIX}*-*"):
        pid = entry.name[len(STAGE_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(entry)
    return swept


def _place(real: Path, target: Path) -> str:
    try:
        os.link(real, target)
        return "link"
    except OSError as exc:
        # Another filesystem or a kernel that forbids the link: copy or link instead. Anything
        # else (e.g. a name that already exists on a case-insensitive filesystem) is an error:
        # copying onto it would write through an earlier hard link into the bundle.
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP):
            raise
    if real.stat().st_size <= COPY_MAX_BYTES:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as dst, open(real, "rb") as src:
            shutil.copyfileobj(src, dst)
        return "copy"
    os.symlink(real, target)
    return "symlink"
