"""A run's decision log: what each stage chose and why, with the time it was decided."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TraceEvent:
    t_ms: float  # ms since the run started
    stage: str  # "budget", "rewrite", "plan", "draft", "rank", "refine", "input"
    message: str

    def __str__(self) -> str:
        return f"[{self.t_ms:8.1f} ms] {self.stage:8s} {self.message}"


@dataclass
class Trace:
    events: list[TraceEvent] = field(default_factory=list)
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def log(self, stage: str, message: str) -> None:
        self.events.append(TraceEvent((time.perf_counter() - self._t0) * 1e3, stage, message))

    def messages(self, stage: str | None = None) -> list[str]:
        return [e.message for e in self.events if stage is None or e.stage == stage]
