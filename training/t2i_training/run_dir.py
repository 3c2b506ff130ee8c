"""A resumable run directory. Every unit of work is saved as soon as it is made:

    RUN/config.json                 the run's settings (a resume must not change them)
    RUN/round_01/rewrites.jsonl     one line per prompt: its n sampled rewrites
    RUN/round_01/renders.jsonl      one line per prompt: the image file of each rewrite
    RUN/round_01/images/<sha>.png   content-hashed renders (identical images are stored once)
    RUN/round_01/votes.jsonl        one line per prompt: every pairwise vote on every dimension
    RUN/round_01/pairs.jsonl        one line per prompt: the chosen/rejected pair, or why none
    RUN/round_01/adapter/           the LoRA adapter after this round's DPO update
    RUN/round_01/eval.jsonl         one line per held-out prompt: win-rate votes
    RUN/round_01/report.json        written last: the round is complete

JSON lines are appended and fsynced one at a time; a line torn by a kill is dropped on the
next read, so a resumed run redoes at most the one unit that was being written. Files and
folders are replaced atomically (temp + rename).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_sdk.bundle.atomic import atomic_write_bytes, atomic_write_text
from t2i_sdk.errors import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

    from t2i_training.config import RunConfig

# Settings a resumed run may change: they do not alter any unit already written.
RESUMABLE_CHANGES = frozenset({"rounds", "device", "run_dir", "bundle_out"})


class JsonlLog:
    """Append-only JSON lines, one record per unit, keyed by the record's ``"index"``."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[int, dict]:
        """``{index: record}`` of every complete line (first record wins for an index)."""
        self._drop_torn_tail()
        records: dict[int, dict] = {}
        if not self.path.exists():
            return records
        for line in self.path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records.setdefault(record["index"], record)
        return records

    def append(self, record: dict) -> None:
        """Write one line and fsync it: once this returns, the unit survives a kill."""
        self._drop_torn_tail()
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def _drop_torn_tail(self) -> None:
        """Cut a last line that has no newline (the process died while writing it)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)


@dataclass(frozen=True)
class RoundDir:
    """One round's folder (``round_XX``, rounds counted from 1)."""

    path: Path
    index: int

    def __post_init__(self):
        (self.path / "images").mkdir(parents=True, exist_ok=True)

    def log(self, name: str) -> JsonlLog:
        """``rewrites``, ``renders``, ``votes``, ``pairs`` or ``eval``."""
        return JsonlLog(self.path / f"{name}.jsonl")

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def report_path(self) -> Path:
        return self.path / "report.json"

    @property
    def scratch_dir(self) -> Path:
        """Trainer output (checkpoints are off; logs only); safe to delete."""
        return self.path / ".trainer"

    def has_adapter(self) -> bool:
        return (self.adapter_dir / "adapter_config.json").is_file()

    def is_complete(self) -> bool:
        return self.report_path.is_file()

    def save_image(self, image: "Image") -> str:
        """Store a PNG named by the SHA-256 of its bytes; returns the file name."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
        name = hashlib.sha256(data).hexdigest()[:24] + ".png"
        path = self.path / "images" / name
        if not path.exists():
            atomic_write_bytes(path, data)
        return name

    def load_image(self, name: str) -> "Image":
        from PIL import Image

        with Image.open(self.path / "images" / name) as img:
            return img.convert("RGB")

    def write_report(self, report: dict) -> None:
        atomic_write_text(self.report_path, json.dumps(report, indent=2, allow_nan=False) + "\n")

    def read_report(self) -> dict:
        return json.loads(self.report_path.read_text(encoding="utf-8"))


class RunDir:
    """The run's root folder. ``open`` records the config, or checks it on a resume."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def open(self, config: "RunConfig") -> "RunDir":
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "config.json"
        current = config.to_dict()
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            # A setting added after the run started was, for that run, its default.
            saved = {**_defaults(config), **saved}
            changed = sorted(k for k in set(saved) | set(current)
                             if k not in RESUMABLE_CHANGES
                             and _jsonable(saved.get(k)) != _jsonable(current.get(k)))
            if changed:
                raise InputError(f"{self.root}: this run was started with different settings "
                                 f"({', '.join(changed)}); use a new run_dir or the old config")
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
        return self

    def round(self, index: int) -> RoundDir:
        if index < 1:
            raise ValueError(f"rounds count from 1, got {index}")
        return RoundDir(self.root / f"round_{index:02d}", index)

    def adapter_after(self, index: int) -> Path | None:
        """The policy after round ``index``; None for round 0 (the base model)."""
        return self.round(index).adapter_dir if index >= 1 else None

    def completed_rounds(self) -> list[int]:
        done = []
        for path in sorted(self.root.glob("round_[0-9][0-9]")):
            if (path / "report.json").is_file():
                done.append(int(path.name.split("_")[1]))
        return done

    @property
    def final_dir(self) -> Path:
        return self.root / "final"


def _jsonable(value):
    """Tuples and lists compare equal once both went through JSON."""
    return json.loads(json.dumps(value))


def _defaults(config) -> dict:
    """Top-level settings of ``config``'s dataclass that have a plain default, as saved."""
    from dataclasses import MISSING, fields

    return {f.name: f.default for f in fields(config) if f.default is not MISSING}
