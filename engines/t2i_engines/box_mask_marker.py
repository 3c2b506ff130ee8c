"""The marker file that says a GLIGEN UNet was trained to run box-masked
(``t2i_engines.pytorch.gligen_box_mask``). Torch-free: exporters and engines read it."""
from __future__ import annotations

import json
from pathlib import Path

BOX_MASK_FILE = "gligen_box_mask.json"  # in the UNet folder
BOX_MASK_VERSION = 1


def is_box_masked(unet_dir: str | Path) -> bool:
    """Whether the UNet saved in ``unet_dir`` was trained to run box-masked."""
    path = Path(unet_dir) / BOX_MASK_FILE
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from e
    if not isinstance(record, dict) or record.get("version") != BOX_MASK_VERSION:
        raise ValueError(f"{path}: expected {{\"version\": {BOX_MASK_VERSION}}}, got {record!r}")
    return True


def mark_box_masked(unet_dir: str | Path) -> Path:
    """Write the marker that makes loaders run this UNet box-masked."""
    path = Path(unet_dir) / BOX_MASK_FILE
    path.write_text(json.dumps({"version": BOX_MASK_VERSION}) + "\n", encoding="utf-8")
    return path
