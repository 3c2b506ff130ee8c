"""Writing a run's files: atomic PNG/JSON writes and the progress display on stderr."""
from __future__ import annotations

import argparse
import io
import json
from contextlib import contextmanager
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
    """Fail before any work if ``path`` cannot take an image (missing folder, unknown suffix)."""
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    Image.init()
    if Image.registered_extensions().get(path.suffix.lower()) not in _RGB_WRITERS:
        raise InputError(f"output {path}: use .png, .jpg, .webp, .bmp or .tiff")
    return path


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
    """A rich spinner on stderr; yields ``update(text)``. Silent when ``quiet``."""
    if quiet:
        yield lambda text: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description)
        yield lambda text: progress.update(task, description=f"{description}: {text}")
