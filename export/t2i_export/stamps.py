"""Re-running an export skips components whose source and options are unchanged.

A finished component folder carries ``export_stamp.json``: the fingerprint of the source
component's files (from the source bundle's manifest) and the options it was exported with.
It is written last, inside the temp folder that is renamed into place, so a folder with a
stamp is complete.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from t2i_sdk.bundle.atomic import atomic_write_text

STAMP_NAME = "export_stamp.json"
EXPORTER_VERSION = 1  # bump when exported graphs change for the same inputs


def source_fingerprint(files: dict[str, str]) -> str:
    """sha256 over the sorted (relpath, sha256) pairs of a component's manifest entry."""
    h = hashlib.sha256()
    for rel, digest in sorted(files.items()):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def make_stamp(files: dict[str, str], target: str, options: dict) -> dict:
    return {"exporter_version": EXPORTER_VERSION, "source": source_fingerprint(files),
            "target": target, "options": options}


def is_current(folder: Path, stamp: dict) -> bool:
    """True when ``folder`` holds a finished export made from the same source and options."""
    try:
        return json.loads((folder / STAMP_NAME).read_text()) == stamp
    except (OSError, ValueError):
        return False


def write_stamp(folder: Path, stamp: dict) -> None:
    atomic_write_text(folder / STAMP_NAME, json.dumps(stamp, indent=2, sort_keys=True) + "\n")
