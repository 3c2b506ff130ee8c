"""SHA-256 of component files: what a bundle promises and what ``load_bundle`` checks."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from t2i_sdk.errors import BundleError

CHUNK_BYTES = 1 << 20  # 1 MiB: large enough to be fast, small enough to stream multi-GB weights
PROGRESS_MIN_BYTES = 256 << 20  # below this hashing takes about a second: a bar is only noise
SKIPPED_DIRS = frozenset({".cache", "__pycache__"})  # hub download metadata, bytecode


def sha256_file(path: str | Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks; ``on_bytes(n)`` is called after each chunk."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def list_files(root: str | Path) -> list[str]:
    """POSIX relpaths of every file under ``root``, sorted; ``.cache``/``__pycache__`` skipped.

    Hidden files are kept (``.gitattributes`` is part of a snapshot). Symlinked directories are
    not followed, symlinked files are listed (they are hashed through the link).
    """
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if os.path.isfile(os.path.join(dirpath, name)):
                found.append((rel_dir / name).as_posix())
    return sorted(found)


def hash_tree(root: str | Path, *, progress: bool = False) -> dict[str, str]:
    """``{posix relpath: sha256 hex}`` for every file under ``root`` (see ``list_files``)."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory, cannot hash it")
    rels = list_files(root)
    return dict(zip(rels, _hash_many([root / r for r in rels], progress=progress)))


def verify_files(root: str | Path, files: dict[str, str], *, progress: bool = False) -> None:
    """Check every ``files`` entry exists under ``root`` and has the listed SHA-256.

    Existence and containment are checked for all files before any is hashed, so a missing
    file is reported at once rather than after minutes of hashing. Raises ``BundleError``
    naming the first bad file.
    """
    root = Path(root)
    paths = [resolve_member(root, rel) for rel in files]
    for rel, path in zip(files, paths):
        if not path.is_file():
            raise BundleError(f"{root / rel}: listed file is missing")
    for (rel, expected), actual in zip(files.items(), _hash_many(paths, progress=progress)):
        if actual != expected.lower():
            raise BundleError(f"{root / rel}: sha256 mismatch: expected {expected[:12]}..., "
                              f"got {actual[:12]}... (file changed or corrupt)")


def resolve_member(root: Path, rel: str) -> Path:
    """``root / rel``, checking ``rel`` is relative and stays inside ``root`` (symlinks too)."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise BundleError(f"{root}: file path {rel!r} must be a relative POSIX path inside it")
    path = root / pure
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"{path}: resolves outside {root} (symlink out)")
    return path


def _hash_many(paths: Iterable[Path], *, progress: bool) -> list[str]:
    paths = list(paths)
    total = sum(p.stat().st_size for p in paths)
    if not progress or total <= PROGRESS_MIN_BYTES:
        return [sha256_file(p) for p in paths]
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("hashing"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("hash", total=total)
        return [sha256_file(p, on_bytes=lambda n: bar.advance(task, n)) for p in paths]
