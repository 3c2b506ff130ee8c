"""An export's output folder appears only when complete, built in ``.{name}.{pid}.tmp``.

Like :func:`t2i_sdk.bundle.atomic_directory`, but the temp folder carries the owning pid so a
later export can sweep what a killed one left (see :mod:`t2i_sdk.scratch`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from t2i_sdk.bundle.atomic import DIR_MODE, move_into_place, refuse_existing
from t2i_sdk.scratch import remove_path, scratch_path, sweep_stale


@contextmanager
def atomic_export_dir(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder beside ``final``; rename it to ``final`` if the block ends
    normally, else remove it. An existing ``final`` raises BundleError unless ``overwrite``;
    with it the old folder is set aside (``.{name}.{pid}.old``), the new one renamed in, then
    the old one deleted."""
    final = Path(final)
    sweep_stale(final)
    refuse_existing(final, overwrite, how="pass --force")
    tmp = scratch_path(final, "tmp")
    remove_path(tmp)  # this process's own, from an earlier call that could not clean up
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        refuse_existing(final, overwrite, how="pass --force")  # it may have appeared meanwhile
        move_into_place(tmp, final, old=scratch_path(final, "old"))
    except BaseException:
        remove_path(tmp)
        raise

