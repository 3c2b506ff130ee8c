"""An export's output folder appears only when complete, built in ``.{name}.{pid}.tmp``.

Like :func:`t2i_sdk.bundle.atomic_directory`, but the temp folder carries the owning pid so a
later export can sweep what a killed one left (see :mod:`t2i_sdk.scratch`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from t2i_sdk.scratch import remove_path, scratch_path, sweep_stale
from t2i_sdk.errors import BundleError

DIR_MODE = 0o755


@contextmanager
def atomic_export_dir(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder beside ``final``; rename it to ``final`` if the block ends
    normally, else remove it. An existing ``final`` raises BundleError unless ``overwrite``;
    with it the old folder is set aside (``.{name}.{pid}.old``), the new one renamed in, then
    the old one deleted."""
    final = Path(final)
    sweep_stale(final)
    _refuse_existing(final, overwrite)
    tmp = scratch_path(final, "tmp")
    remove_path(tmp)  # this process's own, from an earlier call that could not clean up
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        _refuse_existing(final, overwrite)  # it may have appeared while we were building
        _move_into_place(tmp, final)
    except BaseException:
        remove_path(tmp)
        raise


def _refuse_existing(final: Path, overwrite: bool) -> None:
    if not (final.exists() or final.is_symlink()):
        return
    if not overwrite:
        raise BundleError(f"{final}: already exists (pass --force to replace it)")
    if final.is_symlink() or not final.is_dir():
        raise BundleError(f"{final}: exists and is not a folder; refusing to replace it")


def _move_into_place(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.rename(tmp, final)
        return
    old = scratch_path(final, "old")
    remove_path(old)
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)  # put the previous version back rather than leave nothing
        raise
    remove_path(old)
