"""CPU thread settings of the engines: how many threads a model call uses, and whether idle
threads spin (busy-wait) or sleep between parallel regions.

Spinning and using every core win on an idle machine and collapse on a shared one: a thread
that spins while its partner is descheduled burns the time slice the partner needs, so one
draft of bundles/shapes went from 0.3 s to 1.5–7.8 s with another 2-thread process running
(benchmarks/adherence.py measures it). A desktop app shares its machine, so the default is
half the cores, sleeping waits. Settings are process-wide (torch's are), chosen when a
bundle loads: ``Pipeline.from_pretrained(..., threads=N, spin=False)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# Past ~8 threads one small graph gains little, and engines share the machine with each other.
MAX_THREADS = 8


@dataclass(frozen=True)
class CpuThreads:
    threads: int  # intra-op threads of torch, onnxruntime and llama.cpp
    spin: bool  # busy-wait between parallel regions (OpenMP ACTIVE, onnxruntime spinning)

    def __post_init__(self):
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an int >= 1, got {self.threads!r}")


def default_threads() -> CpuThreads:
    """Half the logical cores (at least 1, at most ``MAX_THREADS``), sleeping waits."""
    return CpuThreads(max(1, min(MAX_THREADS, (os.cpu_count() or 2) // 2)), spin=False)


_current: CpuThreads | None = None


def current() -> CpuThreads:
    """The settings engines load with: the last ``configure``'s, else ``default_threads()``."""
    return _current or default_threads()


def configure(settings: CpuThreads) -> CpuThreads:
    """Make ``settings`` the process's: torch's thread count now (if torch is in use), the
    OpenMP wait policy for a torch not yet imported, and what onnxruntime sessions and
    llama.cpp contexts created from now on use. Returns ``settings``."""
    global _current
    _current = settings
    # libgomp reads OMP_WAIT_POLICY once, when torch loads it; an explicit user value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE" if settings.spin else "PASSIVE")
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:  # an onnxruntime / llama.cpp-only install
            return settings
    torch.set_num_threads(settings.threads)
    return settings
