"""The loop every stage shares: step until ``steps`` or the ``minutes`` cap, checkpoint every
``checkpoint_every`` steps and at the end, log losses, show a rich progress bar on stderr."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from t2i_training.shapes.checkpoints import TrainState, load_latest, save_checkpoint

if TYPE_CHECKING:
    import torch

LOSS_EMA = 0.95  # smoothing of the logged loss: single-batch losses are noisy


@dataclass(frozen=True)
class LoopConfig:
    """``minutes`` caps this session's wall time (None: no cap); the step target is global."""

    steps: int
    minutes: float | None = None
    checkpoint_every: int = 200
    log_every: int = 25
    progress: bool = True


@dataclass(frozen=True)
class LoopResult:
    state: TrainState
    finished: bool  # reached ``steps`` (not stopped by the time cap)


def lr_at(step: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up to ``base_lr``, then constant (short runs gain nothing from decay)."""
    return base_lr * min(1.0, (step + 1) / max(1, warmup))


def optimizer_step(optimizer, module, loss, step: int, base_lr: float, warmup: int) -> None:
    """One update of every stage: warm-up lr, backward, clip the gradient norm to 1, step."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, base_lr, warmup)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
    optimizer.step()


def run_loop(name: str, stage_dir: Path, loop: LoopConfig, modules: dict[str, "torch.nn.Module"],
             optimizer: "torch.optim.Optimizer", generator: "torch.Generator",
             step_fn: Callable[[int], dict[str, float]]) -> LoopResult:
    """Resume from the latest checkpoint, then call ``step_fn(step)`` (one optimiser step; returns
    metrics with a "loss") until done. Appends ``{step, elapsed_s, ...}`` lines to
    ``stage_dir/log.jsonl`` every ``log_every`` steps."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    state = load_latest(stage_dir, modules, optimizer, generator) or TrainState()
    start, deadline = time.monotonic(), _deadline(loop.minutes)
    base_elapsed = state.elapsed_s
    log_path = stage_dir / "log.jsonl"
    with _progress(name, loop, state.step) as advance:
        while state.step < loop.steps and time.monotonic() < deadline:
            metrics = step_fn(state.step)
            state.step += 1
            loss = float(metrics["loss"])
            state.loss_ema = loss if state.loss_ema is None else (
                LOSS_EMA * state.loss_ema + (1 - LOSS_EMA) * loss)
            state.elapsed_s = base_elapsed + time.monotonic() - start
            advance(state.loss_ema)
            if state.step % loop.log_every == 0 or state.step == loop.steps:
                _log(log_path, name, state, metrics, loop.progress)
            if state.step % loop.checkpoint_every == 0:
                save_checkpoint(stage_dir, state, modules, optimizer, generator)
    state.elapsed_s = base_elapsed + time.monotonic() - start
    save_checkpoint(stage_dir, state, modules, optimizer, generator)
    return LoopResult(state, state.step >= loop.steps)


def write_summary(stage_dir: Path, name: str, result: LoopResult, extra: dict) -> dict:
    """``stage_dir/summary.json``: what TRAINING.md reports for this stage."""
    from t2i_sdk.bundle.atomic import atomic_write_text

    summary = {"stage": name, "steps": result.state.step, "finished": result.finished,
               "wall_s": round(result.state.elapsed_s, 1),
               "final_loss": None if result.state.loss_ema is None
               else round(result.state.loss_ema, 5), **extra}
    atomic_write_text(stage_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _deadline(minutes: float | None) -> float:
    return float("inf") if minutes is None else time.monotonic() + 60.0 * minutes


def _log(path: Path, name: str, state: TrainState, metrics: dict, echo: bool) -> None:
    record = {"step": state.step, "elapsed_s": round(state.elapsed_s, 1),
              "loss_ema": round(state.loss_ema, 5),
              **{k: round(float(v), 5) for k, v in metrics.items()}}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    if echo:  # a plain line too: under nohup the live bar is not written to the log file
        from rich.console import Console
        Console(stderr=True).log(f"{name} " + " ".join(f"{k}={v}" for k, v in record.items()))


class _progress:
    """Context manager yielding ``advance(loss)``; silent when ``loop.progress`` is False."""

    def __init__(self, name: str, loop: LoopConfig, done: int):
        self.name, self.loop, self.done = name, loop, done
        self.bar = None

    def __enter__(self):
        if not self.loop.progress:
            return lambda loss: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn(f"[bold]{self.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.start()
        task = self.bar.add_task(self.name, total=self.loop.steps, completed=self.done, loss="-")
        return lambda loss: self.bar.update(task, advance=1, loss=f"{loss:.4f}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
