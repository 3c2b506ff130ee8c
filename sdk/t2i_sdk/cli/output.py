"""Writing a run's files: atomic PNG/JSON writes and the progress display on stderr."""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from t2i_sdk.bundle.atomic import atomic_write_bytes, atomic_write_text
from t2i_sdk.errors import InputError


def add_quiet(parser) -> None:
    """``--quiet`` after the subcommand too; SUPPRESS keeps ``t2i --quiet CMD`` working."""
    parser.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                        help="no progress on stderr")


# Formats Pillow can write an RGB image in (many it reads, e.g. .psd or .xbm, it cannot write).
_RGB_WRITERS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF"}


def check_image_path(path: str | Path) -> Path:
    """Fail before any work if ``path`` cannot take an image (missing or read-only folder,
    unknown suffix, a folder in the way)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist" if not path.parent.exists()
                         else f"output folder {path.parent} is not a folder")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder {path.parent} is not writable")
    Image.init()
    if Image.registered_extensions().get(path.suffix.lower()) not in _RGB_WRITERS:
        raise InputError(f"output {path}: use .png, .jpg, .webp, .bmp or .tiff")
    if path.is_dir():
        raise InputError(f"output {path} is a folder")
    return path


@dataclass(frozen=True)
class RunPaths:
    """Where ``t2i generate --out X.png`` writes: X.png, X.sheet.png and X.json."""

    image: Path
    sheet: Path
    json: Path

    def __iter__(self):
        return iter((self.image, self.sheet, self.json))


def run_paths(out: str | Path, *, force: bool) -> RunPaths:
    """The three paths for ``--out``, checked before any work. The image the user named may be
    replaced; the sheet and JSON, which they did not name, only with ``force``."""
    image = check_image_path(out)
    paths = RunPaths(image, image.with_name(image.stem + ".sheet.png"), image.with_suffix(".json"))
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path} is a folder; it would be overwritten by this run's files")
    existing = [str(p) for p in (paths.sheet, paths.json) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise InputError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}"
                         f" and would be overwritten; pass --force or choose another --out")
    return paths


def encode_image(image: Image.Image, path: Path) -> bytes:
    """The file bytes of ``image`` in the format ``path``'s suffix names."""
    buf = io.BytesIO()
    image.save(buf, format=Image.registered_extensions()[path.suffix.lower()])
    return buf.getvalue()


def save_image(image: Image.Image, path: Path) -> None:
    atomic_write_bytes(path, encode_image(image, path))


def save_json(obj, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


@contextmanager
def stage_progress(quiet: bool, description: str):
    """A rich spinner on stderr; yields ``update(text)``. Silent when ``quiet`` or when stderr
    is not a terminal (a log would only get the blank line the spinner leaves)."""
    if quiet or not sys.stderr.isatty():
        yield lambda text: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description)
        yield lambda text: progress.update(task, description=f"{description}: {text}")
