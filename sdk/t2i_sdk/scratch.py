"""Temp files and folders of a write in progress (an export, ``t2i generate``'s file set),
named after the process that owns them.

Everything written before an output is complete lives beside that output as
``.{name}.{pid}.{tag}`` (hidden, so it never looks like a finished result). A run killed
outright (``kill -9``, power loss) cannot clean up after itself, so every writer first calls
:func:`sweep_stale`, which removes the leftovers of runs whose process is gone; those of a live
process (a concurrent run) are left alone.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


# Every scratch tag in use; sweep_stale matches these only.
TAGS = ("tmp", "old", "partial", "f16.gguf", "f16.partial")


def scratch_path(final: Path, tag: str, *, pid: int | None = None) -> Path:
    """``final``'s hidden sibling ``.{name}.{pid}.{tag}`` (this process's pid by default)."""
    if tag not in TAGS:
        raise ValueError(f"unknown scratch tag {tag!r}; add it to TAGS so sweep_stale finds it")
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid() if pid is None else pid}.{tag}")


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (possibly another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. a pid beyond what the OS allows
        return False
    return True


def sweep_stale(final: Path) -> list[Path]:
    """Remove ``final``'s scratch files/folders whose owning process has exited; returns them.

    An ``old`` one (a previous version set aside while a new one was renamed in) is put back
    when ``final`` is missing, rather than deleted.
    """
    final = Path(final)
    if not final.parent.is_dir():
        return []
    # Only our own tags: ".model.2024.<pid>.tmp" is another output's ("model.2024"), not ours.
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.(\d+)\.({'|'.join(map(re.escape, TAGS))})$")
    swept = []
    for entry in sorted(final.parent.iterdir()):
        match = pattern.match(entry.name)
        if not match or int(match[1]) == os.getpid() or pid_alive(int(match[1])):
            continue
        if match[2] == "old" and not (final.exists() or final.is_symlink()):
            os.rename(entry, final)
            continue
        remove_path(entry)
        swept.append(entry)
    return swept


def remove_path(path: Path) -> None:
    """Remove a file, link or folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
