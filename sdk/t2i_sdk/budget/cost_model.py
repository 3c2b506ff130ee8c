"""Per-stage latency model: ``ms = fixed + per_unit * units``, learned online from wall times.

Stages and their units (count them with the ``*_units`` helpers, so that what the pipeline
observes and what the planner predicts agree):

============  ====================================================================
``rewrite``   one rewrite; one LLM call makes all ``n_rewrites`` of them
``plan``      one layout-planner call (units = 1)
``draft``     image x denoising step, per drafter batch
``score``     one embedded view: a whole image or one object crop (``score_units``)
``refine``    image x refinement step, per refiner batch
============  ====================================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from t2i_sdk.budget.planner import GenerationPlan

STAGES = ("rewrite", "plan", "draft", "score", "refine")
COST_MODEL_VERSION = 1
EMA_ALPHA = 0.3  # weight of the newest observation once a few are in (~last 6 runs matter)
# Below this spread of observed units (std / mean) a slope is noise: only rescale the level.
MIN_UNIT_SPREAD = 0.1
# How far one call strays from the line, as an RMS log ratio observed / predicted: the weight of
# the newest error, the value assumed until MIN_ERRORS are in, and the one-sided normal point
# of the high estimate (2.33: a call that cannot be abandoned overruns ~1 time in 100).
ERROR_ALPHA = 0.1
MIN_ERRORS = 3
DEFAULT_LOG_ERROR = 0.15
HIGH_Z = 2.33
MAX_LOG_ERROR = 3.0  # one wild call (a swap-in, a suspended laptop) counts as a factor e^3


def draft_units(n_images: int, steps: int) -> float:
    """Units of one drafter batch: ``n_images`` images x ``steps`` denoising steps."""
    return float(n_images * steps)


def score_units(n_images: int, n_objects: int) -> float:
    """Units of one scorer call: every image is embedded whole plus one crop per layout object,
    each a CLIP forward pass at the same resolution, so the cost goes with the views."""
    return float(n_images * (1 + max(0, n_objects)))


def refine_units(n_images: int, steps: int) -> float:
    """Units of one refiner batch: ``n_images`` images x ``steps`` img2img steps."""
    return float(n_images * steps)


@dataclass
class StageCost:
    """Linear latency model of one stage: ``predict(units) = fixed_ms + per_unit_ms * units``.

    A stage's wall time is a fixed overhead (kernel launches, text encoding, VAE set-up,
    Python) plus work proportional to its units (UNet evaluations, CLIP forward passes), the
    usual linear latency model for batched inference. ``observe`` refits it from an
    exponentially weighted regression of past ``(units, ms)`` observations, so it tracks
    drift (thermals, other load) while a single outlier cannot dominate for long. It also keeps
    how far calls stray from the line (``log_error``), so work that cannot be stopped once
    started is planned at a high estimate (``predict_high``) rather than at the mean.
    """

    fixed_ms: float
    per_unit_ms: float
    n_obs: int = 0  # observations so far, calibration included
    # Exponentially weighted moments of the observe()d (units, ms): the fit's sufficient
    # statistics. ``n_fit`` counts observations in them (0: the line is still a prior).
    n_fit: int = field(default=0, repr=False)
    mean_units: float = field(default=0.0, repr=False)
    mean_ms: float = field(default=0.0, repr=False)
    mean_units_sq: float = field(default=0.0, repr=False)
    mean_units_ms: float = field(default=0.0, repr=False)
    # Exponentially weighted mean of log(observed / predicted)^2 over calls made once the line
    # was fitted (noise, load and the line's own misfit at that size); ``n_errors`` count them.
    mean_sq_log_error: float = field(default=0.0, repr=False)
    n_errors: int = field(default=0, repr=False)

    def predict(self, units: float) -> float:
        """Predicted wall time in ms of one call with ``units`` units (>= 0)."""
        return max(0.0, self.fixed_ms + self.per_unit_ms * max(0.0, units))

    def log_error(self) -> float:
        """RMS log ratio of observed to predicted ms; ``DEFAULT_LOG_ERROR`` until enough calls."""
        if self.n_errors < MIN_ERRORS:
            return DEFAULT_LOG_ERROR
        return math.sqrt(self.mean_sq_log_error)

    def predict_high(self, units: float) -> float:
        """A high estimate (~99th percentile) of one call's ms, for work that cannot be stopped
        once started: ``predict(units) * exp(HIGH_Z * log_error())``, a log-normal error."""
        return self.predict(units) * math.exp(HIGH_Z * self.log_error())

    def observe(self, units: float, ms: float) -> None:
        """Fold in one measured call. Non-finite values are ignored, negatives clamped to 0.

        The first observation replaces the calibration prior's level outright (its weight is
        1; the prior's fixed/per-unit split is kept until observations span several sizes);
        the next ones are averaged (weights 1/2, 1/3) until the weight reaches ``EMA_ALPHA``,
        so a warm-up outlier fades within a few runs.
        """
        if not (math.isfinite(units) and math.isfinite(ms)):
            return
        units, ms = max(0.0, float(units)), max(0.0, float(ms))
        if self.n_fit > 0:  # the line is fitted: how far off was it? (the prior's miss is moot)
            self._observe_error(self.predict(units), ms)
        w = max(EMA_ALPHA, 1.0 / (self.n_fit + 1))
        self.mean_units += w * (units - self.mean_units)
        self.mean_ms += w * (ms - self.mean_ms)
        self.mean_units_sq += w * (units * units - self.mean_units_sq)
        self.mean_units_ms += w * (units * ms - self.mean_units_ms)
        self.n_obs += 1
        self.n_fit += 1
        self._refit()

    def _observe_error(self, predicted: float, ms: float) -> None:
        if predicted <= 0 or ms <= 0:
            return
        err = min(MAX_LOG_ERROR, abs(math.log(ms / predicted)))
        w = max(ERROR_ALPHA, 1.0 / (self.n_errors + 1))
        self.mean_sq_log_error += w * (err * err - self.mean_sq_log_error)
        self.n_errors += 1

    def _refit(self) -> None:
        mu, my = self.mean_units, self.mean_ms
        var = max(0.0, self.mean_units_sq - mu * mu)
        if var > (MIN_UNIT_SPREAD * mu) ** 2 and var > 1e-12:
            slope = (self.mean_units_ms - mu * my) / var
            if slope < 0:  # noise made it slope down: cost cannot fall with more work
                self.fixed_ms, self.per_unit_ms = my, 0.0
            elif my - slope * mu < 0:  # negative overhead: refit through the origin
                self.fixed_ms, self.per_unit_ms = 0.0, self.mean_units_ms / self.mean_units_sq
            else:
                self.fixed_ms, self.per_unit_ms = my - slope * mu, slope
            return
        # All observations at about the same size: keep the prior's fixed/per-unit split and
        # rescale it so the prediction at the observed size matches the observed mean.
        predicted = self.fixed_ms + self.per_unit_ms * mu
        if predicted > 0:
            scale = my / predicted
            self.fixed_ms, self.per_unit_ms = self.fixed_ms * scale, self.per_unit_ms * scale
        elif mu > 0:
            self.fixed_ms, self.per_unit_ms = 0.0, my / mu
        else:
            self.fixed_ms = my

    def to_dict(self) -> dict:
        return {"fixed_ms": self.fixed_ms, "per_unit_ms": self.per_unit_ms, "n_obs": self.n_obs,
                "n_fit": self.n_fit, "mean_units": self.mean_units, "mean_ms": self.mean_ms,
                "mean_units_sq": self.mean_units_sq, "mean_units_ms": self.mean_units_ms,
                "mean_sq_log_error": self.mean_sq_log_error, "n_errors": self.n_errors}

    @classmethod
    def from_dict(cls, d: object, stage: str = "?") -> StageCost:
        """Inverse of ``to_dict``; raises ``ValueError`` naming the bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"cost model stage {stage!r}: expected an object, got {type(d).__name__}")
        for name in ("fixed_ms", "per_unit_ms"):
            if name not in d:
                raise ValueError(f"cost model stage {stage!r}: missing {name}")
        vals = {}
        for name in ("fixed_ms", "per_unit_ms", "mean_units", "mean_ms",
                     "mean_units_sq", "mean_units_ms", "mean_sq_log_error"):
            v = d.get(name, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"cost model stage {stage!r}: {name}={v!r} is not a finite number >= 0")
            vals[name] = float(v)
        counts = {}
        for name in ("n_obs", "n_fit", "n_errors"):
            v = d.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"cost model stage {stage!r}: {name}={v!r} is not an int >= 0")
            counts[name] = v
        return cls(**counts, **vals)


def _default_priors() -> dict[str, StageCost]:
    # Calibration priors for an SD-1.5-class UNet at 512 px on a consumer GPU and a ~1B LLM;
    # the first measured run replaces their level (see StageCost.observe).
    return {
        "rewrite": StageCost(fixed_ms=200.0, per_unit_ms=400.0),
        "plan": StageCost(fixed_ms=0.0, per_unit_ms=800.0),
        "draft": StageCost(fixed_ms=150.0, per_unit_ms=35.0),
        "score": StageCost(fixed_ms=30.0, per_unit_ms=8.0),
        "refine": StageCost(fixed_ms=150.0, per_unit_ms=35.0),
    }


@dataclass
class CostModel:
    """Latency models of the five stages, keyed by stage name (see ``STAGES``)."""

    stages: dict[str, StageCost] = field(default_factory=_default_priors)

    def __post_init__(self) -> None:
        self.stages = {**_default_priors(), **self.stages}
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown cost stages {sorted(unknown)}; known: {list(STAGES)}")

    def stage(self, stage: str) -> StageCost:
        try:
            return self.stages[stage]
        except KeyError:
            raise ValueError(f"unknown cost stage {stage!r}; known: {list(STAGES)}") from None

    def predict(self, stage: str, units: float) -> float:
        """Predicted ms of one call of ``stage`` with ``units`` units."""
        return self.stage(stage).predict(units)

    def predict_high(self, stage: str, units: float) -> float:
        """High (~99th percentile) ms of one call of ``stage``: see ``StageCost.predict_high``."""
        return self.stage(stage).predict_high(units)

    def observe(self, stage: str, units: float, ms: float) -> None:
        """Feed back one measured call of ``stage``: ``units`` units took ``ms`` wall ms."""
        self.stage(stage).observe(units, ms)

    def predict_plan(self, plan: GenerationPlan, *, llm_rewriter: bool, llm_planner: bool,
                     refine_steps: int, draft_batch: int, n_objects: int) -> dict[str, float]:
        """Predicted ms per stage for a whole run of ``plan``, plus ``"total"``.

        Mirrors the pipeline's calls: one rewriter call when ``llm_rewriter`` (the identity
        rewriter costs nothing), one planner call when ``llm_planner``; per rewrite,
        ``ceil(n_drafts / draft_batch)`` drafter batches, each scored as it lands; per round,
        one refiner call per rewrite among the ``top_k`` (at most ``min(top_k, n_rewrites)``,
        assumed) and one scorer call re-ranking the refined images; every scored image also
        embeds ``n_objects`` crops.
        """
        batch = max(1, draft_batch)
        draft = score = 0.0
        for start in range(0, plan.n_drafts, batch):  # one rewrite's batches; all rewrites alike
            b = min(batch, plan.n_drafts - start)
            draft += self.predict("draft", draft_units(b, plan.steps))
            score += self.predict("score", score_units(b, n_objects))
        refine_calls = min(plan.top_k, plan.n_rewrites)
        refine = self.stage("refine")  # linear, so how the top_k split over calls is irrelevant
        refine_round = (refine_calls * refine.fixed_ms
                        + refine.per_unit_ms * refine_units(plan.top_k, refine_steps))
        out = {
            "rewrite": self.predict("rewrite", plan.n_rewrites) if llm_rewriter else 0.0,
            "plan": self.predict("plan", 1) if llm_planner else 0.0,
            "draft": plan.n_rewrites * draft,
            "score": plan.n_rewrites * score
            + plan.rounds * self.predict("score", score_units(plan.top_k, n_objects)),
            "refine": plan.rounds * refine_round,
        }
        out["total"] = sum(out.values())
        return out

    def to_dict(self) -> dict:
        return {"version": COST_MODEL_VERSION,
                "stages": {name: cost.to_dict() for name, cost in self.stages.items()}}

    @classmethod
    def from_dict(cls, d: object) -> CostModel:
        """Inverse of ``to_dict``. Missing stages get default priors, unknown ones are ignored
        (written by a newer version); anything malformed raises ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"cost model: expected an object, got {type(d).__name__}")
        if d.get("version") != COST_MODEL_VERSION:
            raise ValueError(f"cost model: unsupported version {d.get('version')!r} "
                             f"(expected {COST_MODEL_VERSION})")
        stages = d.get("stages", {})
        if not isinstance(stages, dict):
            raise ValueError(f"cost model: 'stages' must be an object, got {type(stages).__name__}")
        return cls({name: StageCost.from_dict(v, name)
                    for name, v in stages.items() if name in STAGES})
