"""Resumable checkpoints: modules (safetensors), optimizer (torch.save, read back with
``weights_only=True``), the training generator's RNG state, step and elapsed time.

Layout: ``STAGE/checkpoints/step_00000500/`` plus ``STAGE/checkpoints/LATEST`` naming the
newest complete one. A checkpoint folder is written under a temp name and renamed in place, and
LATEST is replaced atomically afterwards, so a kill at any moment leaves a loadable checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_sdk.bundle.atomic import atomic_write_text

if TYPE_CHECKING:
    import torch

LATEST = "LATEST"


@dataclass
class TrainState:
    """Progress that must survive a restart. ``elapsed_s`` sums wall time over all sessions."""

    step: int = 0
    elapsed_s: float = 0.0
    loss_ema: float | None = None
    extra: dict = field(default_factory=dict)


def checkpoint_root(stage_dir: str | Path) -> Path:
    return Path(stage_dir) / "checkpoints"


def save_checkpoint(stage_dir: str | Path, state: TrainState, modules: dict[str, "torch.nn.Module"],
                    optimizer: "torch.optim.Optimizer", generator: "torch.Generator",
                    keep: int = 2) -> Path:
    """Write checkpoint ``state.step`` atomically, point LATEST at it, keep the newest ``keep``."""
    import torch
    from safetensors.torch import save_file

    root = checkpoint_root(stage_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{state.step:08d}"
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, module in modules.items():
        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        save_file(tensors, tmp / f"{name}.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    save_file({"generator": generator.get_state(), "torch_global": torch.get_rng_state()},
              tmp / "rng.safetensors")
    (tmp / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # a re-save of the same step after a resume
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(root / LATEST, final.name)
    _prune(root, keep)
    return final


def load_latest(stage_dir: str | Path, modules: dict[str, "torch.nn.Module"],
                optimizer: "torch.optim.Optimizer | None",
                generator: "torch.Generator | None") -> TrainState | None:
    """Restore the newest checkpoint into ``modules`` / ``optimizer`` / ``generator`` in place;
    returns its TrainState, or None when the stage has no checkpoint yet."""
    import torch
    from safetensors.torch import load_file

    folder = latest_checkpoint(stage_dir)
    if folder is None:
        return None
    for name, module in modules.items():
        module.load_state_dict(load_file(folder / f"{name}.safetensors"))
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    rng = load_file(folder / "rng.safetensors")
    if generator is not None:
        generator.set_state(rng["generator"])
    torch.set_rng_state(rng["torch_global"])
    return TrainState(**json.loads((folder / "state.json").read_text(encoding="utf-8")))


def latest_checkpoint(stage_dir: str | Path) -> Path | None:
    """The folder LATEST names, or None."""
    pointer = checkpoint_root(stage_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    return folder if folder.is_dir() else None


def _prune(root: Path, keep: int) -> None:
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
