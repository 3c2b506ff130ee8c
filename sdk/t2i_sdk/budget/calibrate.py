"""Measure per-stage costs at load: two calls per stage give the linear model's two unknowns
(fixed ms and ms per unit). Runs once per bundle and device; the cost cache keeps the result."""
from __future__ import annotations

import os
import platform
import time

from t2i_sdk.budget.cost_model import CostModel, StageCost, score_units

_PROMPT = "a red apple to the left of a blue cup"


def device_name(device: str = "auto") -> str:
    """A stable name for the machine a bundle runs on, e.g. ``NVIDIA H100`` or ``cpu-x86_64-2c``.
    Asks torch when it is installed; a torch-free runtime asks onnxruntime's providers."""
    try:
        import torch  # noqa: F401
    except ImportError:
        resolved = _device_without_torch(device)
    else:
        from t2i_engines.pytorch.device import resolve_device

        resolved = resolve_device(device)
        if resolved.startswith("cuda"):
            return torch.cuda.get_device_name(torch.device(resolved))
    return f"{resolved}-{platform.machine()}-{os.cpu_count()}c"


def _device_without_torch(device: str) -> str:
    kind = device.split(":", 1)[0]
    if kind != "auto":
        return device
    try:
        import onnxruntime
    except ImportError:
        return "cpu"
    return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"


def default_costs() -> CostModel:
    """Priors for an uncalibrated pipeline: deliberately pessimistic CPU-ish numbers."""
    return CostModel()


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _fit_line(units_a: float, ms_a: float, units_b: float, ms_b: float) -> StageCost:
    # ms = fixed + per_unit · units through two measured points
    per_unit = max(0.0, (ms_b - ms_a) / (units_b - units_a))
    return StageCost(fixed_ms=max(0.0, ms_a - per_unit * units_a), per_unit_ms=per_unit, n_obs=1)


def warm_up(pipe) -> None:
    """One smallest call of each model stage: first calls pay for lazy initialisation (kernel
    selection, allocator growth, imports) that must not land in a budgeted run."""
    layout = pipe.planners["rule"].plan(_PROMPT)
    images = pipe.drafter.draft(_PROMPT, layout, [0], 1)
    from t2i_sdk.stages.rank import HybridRanker
    HybridRanker(pipe.scorer).score(images, _PROMPT, layout)
    if pipe.refiner is not None:
        pipe.refiner.refine(images, _PROMPT, [0], pipe.config.refine_strength, 1)
    if pipe.rewriters["llm"] is not None:
        pipe.rewriters["llm"].rewrite(_PROMPT, 1, 0)
    if pipe.planners["llm"] is not None:
        pipe.planners["llm"].plan(_PROMPT)


def calibrate_costs(pipe) -> CostModel:
    """Time each stage of ``pipe`` at two sizes, after :func:`warm_up`, on a tiny input."""
    from t2i_sdk.stages.rank import HybridRanker

    warm_up(pipe)
    costs = default_costs()
    layout = pipe.planners["rule"].plan(_PROMPT)
    draft = lambda n, s: pipe.drafter.draft(_PROMPT, layout, list(range(n)), s)  # noqa: E731
    costs.stages["draft"] = _fit_line(1, _ms(lambda: draft(1, 1)), 3, _ms(lambda: draft(1, 3)))
    images = draft(1, 1)

    score = lambda n: HybridRanker(pipe.scorer).score(images * n, _PROMPT, layout)  # noqa: E731
    views = lambda n: score_units(n, len(layout.objects))  # noqa: E731
    costs.stages["score"] = _fit_line(views(1), _ms(lambda: score(1)), views(3), _ms(lambda: score(3)))

    if pipe.refiner is not None:
        strength = pipe.config.refine_strength
        refine = lambda s: pipe.refiner.refine(images, _PROMPT, [0], strength, s)  # noqa: E731
        costs.stages["refine"] = _fit_line(1, _ms(lambda: refine(1)), 3, _ms(lambda: refine(3)))
    if pipe.rewriters["llm"] is not None:
        rewrite = lambda n: pipe.rewriters["llm"].rewrite(_PROMPT, n, 0)  # noqa: E731
        costs.stages["rewrite"] = _fit_line(1, _ms(lambda: rewrite(1)), 2, _ms(lambda: rewrite(2)))
    if pipe.planners["llm"] is not None:
        costs.stages["plan"] = StageCost(_ms(lambda: pipe.planners["llm"].plan(_PROMPT)), 0.0, n_obs=1)
    return costs
