"""The runtime: rewrite → plan → draft → rank → refine under a latency budget.

``Pipeline.__call__`` reads top to bottom like ReFocus (arXiv 2510.24133) with input-side
scaling (arXiv 2510.12041) in front of it. Each model call is one unit of work: a unit starts
only if the cost model says it fits the time left, and between denoising steps a unit is
abandoned once the rest of it would end past the deadline, so a run overruns by at most one
denoising step (plus a VAE decode). The very first draft always runs, with fewer steps if the
budget is tiny, so there is always an image.

One ``Pipeline`` may be called from many threads: each call keeps its own state in a
``RunContext`` and model calls are serialised, so results equal single-threaded ones.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import replace
from pathlib import Path

from t2i_sdk.budget import CostModel, Deadline, PlanSpace, plan_budget
from t2i_sdk.budget.cost_model import draft_units, refine_units, score_units
from t2i_sdk.call_args import (validated_lam, validated_overrides, validated_rewrites,
                               validated_seed, validated_text)
from t2i_sdk.config import PipelineConfig
from t2i_sdk.errors import Cancelled, InputError
from t2i_sdk.layout import Layout
from t2i_sdk.limits import derived_seed
from t2i_sdk.planning import RulePlanner
from t2i_sdk.result import Candidate, Result
from t2i_sdk.run_context import PipelineLocks, RunContext, RunStopped
from t2i_sdk.stages.rank import HybridRanker
from t2i_sdk.stages.rewrite import IdentityRewriter
from t2i_sdk.trace import Trace

_PLAN_FIELDS = ("n_rewrites", "n_drafts", "steps", "top_k", "rounds")


class Pipeline:
    """Stages are plain objects behind the protocols in :mod:`t2i_sdk.stages`.

    ``drafter`` and ``scorer`` are required; ``refiner``, ``llm_rewriter`` and ``llm_planner``
    are optional. ``costs`` seeds the budget planner (ms per unit, see :mod:`t2i_sdk.budget`).
    """

    def __init__(self, drafter, scorer, *, refiner=None, llm_rewriter=None, llm_planner=None,
                 config: PipelineConfig | None = None, costs: CostModel | None = None,
                 space: PlanSpace | None = None, on_costs_updated=None):
        self.drafter, self.scorer, self.refiner = drafter, scorer, refiner
        self.rewriters = {"identity": IdentityRewriter(), "llm": llm_rewriter}
        self.config = config or PipelineConfig()
        self.planners = {"rule": RulePlanner(self.config.layout), "llm": llm_planner}
        self.costs = costs or CostModel()
        self.space = space or PlanSpace(draft_batch=self.config.draft_batch)
        self.on_costs_updated = on_costs_updated  # e.g. persist the cost cache after each run
        self._locks = PipelineLocks()
        # Stages that take on_step can stop between denoising steps (cancel, deadline).
        self._step_aware = {"draft": _takes_on_step(getattr(drafter, "draft", None)),
                            "refine": _takes_on_step(getattr(refiner, "refine", None))}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "auto",
                        config: PipelineConfig | None = None, calibrate: bool = True,
                        verify: bool = True, cache_dir: str | Path | None = None,
                        threads: int | None = None, spin: bool | None = None) -> "Pipeline":
        """Load a bundle directory (see :mod:`t2i_sdk.bundle`); hashes are checked unless
        ``verify=False``. Per-stage costs come from the cache for this bundle and device, else
        from a short calibration (``calibrate=False`` keeps conservative defaults).

        ``threads``/``spin``: CPU threads per model call and whether idle ones busy-wait
        (default: half the cores, sleeping; see :mod:`t2i_engines.threads`). Process-wide."""
        from t2i_sdk.loading import load_pipeline
        return load_pipeline(cls, path, device=device, config=config, calibrate=calibrate,
                             verify=verify, cache_dir=cache_dir, threads=threads, spin=spin)

    def close(self) -> None:
        """Release the models now: stages holding native resources (llama.cpp) are closed,
        the others dropped for the garbage collector. Waits for a model call running on
        another thread; calling it again does nothing. Afterwards a call (or any use of a
        stage) raises :class:`~t2i_sdk.errors.PipelineClosed`. ``with
        Pipeline.from_pretrained(...) as pipe:`` closes on leaving the block."""
        from t2i_sdk.closing import closed_stage, release_stages

        with self._locks.model:
            if self.closed:
                return
            stages = [self.drafter, self.scorer, self.refiner, self.rewriters["llm"],
                      self.planners["llm"]]
            self.drafter = closed_stage(self.drafter, "drafter")
            self.scorer = closed_stage(self.scorer, "scorer")
            self.refiner = closed_stage(self.refiner, "refiner")
            self.rewriters = {**self.rewriters,
                              "llm": closed_stage(self.rewriters["llm"], "LLM rewriter")}
            self.planners = {**self.planners,
                             "llm": closed_stage(self.planners["llm"], "LLM planner")}
            release_stages(stages)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        from t2i_sdk.closing import ClosedStage

        return isinstance(self.drafter, ClosedStage)

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, prompt: str, *, budget_ms: float | None = None, seed: int = 0,
                 n_rewrites: int | None = None, n_drafts: int | None = None,
                 steps: int | None = None, top_k: int | None = None, rounds: int | None = None,
                 lam: float | None = None, rewriter: str | None = None,
                 planner: str | None = None, rewrites: list[str] | None = None,
                 cancel=None, on_progress=None, on_unit=None) -> Result:
        """Generate the best image found within ``budget_ms`` (None: no deadline).

        Explicit ``n_rewrites … rounds`` override the budget planner (caps in
        :mod:`t2i_sdk.limits`); ``lam`` in [0, 1] overrides the hybrid weight;
        ``rewriter``/``planner`` pick a stage by name. ``rewrites`` are texts to draft from in
        place of the rewrite stage's (e.g. rewrites made elsewhere); ranking still scores
        against ``prompt``.

        ``cancel`` (e.g. a ``threading.Event``) is checked between model calls and denoising
        steps: once set, the run returns its best image so far with ``Result.cancelled``
        (``Cancelled`` is raised if it had none yet). ``on_progress(Progress)`` reports the
        stage, work done, time left and the best candidate so far (a live preview);
        ``on_unit(stage)`` is called after each model call.
        """
        prompt = validated_text(prompt)
        given = validated_rewrites(rewrites)
        seed, lam = validated_seed(seed), validated_lam(lam)
        if given is not None:
            n_rewrites, rewriter = len(given), "identity"  # no LLM call to budget for
        overrides = validated_overrides(dict(zip(_PLAN_FIELDS, (n_rewrites, n_drafts, steps,
                                                                top_k, rounds))))
        config = self._run_config(lam, rewriter, planner)
        trace = Trace()
        run = RunContext(self.costs, Deadline(budget_ms), trace, locks=self._locks,
                         cancel=cancel, on_unit=on_unit, on_progress=on_progress)
        rule_layout = self.planners["rule"].plan(prompt)
        self._note_token_limit(prompt, run)

        # 0. Budget: choose (n_rewrites, n_drafts, steps, top_k, rounds) from measured costs.
        asked = {"rewriter": rewriter or self.config.rewriter, "planner": planner or self.config.planner}
        n_objects = 0 if config.planner == "none" else len(rule_layout.objects)
        config, decision = self._plan_budget(budget_ms, config, asked, overrides, n_objects, trace,
                                             given_rewrites=given is not None)
        plan = decision.plan
        trace.log("budget", f"plan {plan.to_dict()} predicted {decision.predicted_ms['total']:.0f} ms")
        for note in decision.notes:
            trace.log("budget", note)
        run.work_total = (plan.n_candidates * plan.steps
                          + plan.rounds * plan.top_k * config.refine_steps)

        # LLM calls may not eat the time of the first draft, which always runs.
        first_draft_ms = (run.predict("draft", draft_units(1, plan.steps))
                          + run.predict("score", score_units(1, len(rule_layout.objects))))
        rewrites, layouts, stopped = [prompt], [rule_layout], None
        try:
            # 1. Rewrite: n rewrites compete as extra candidates (input-side scaling).
            rewrites = given or self._rewrite(prompt, config.rewriter, plan.n_rewrites, seed,
                                              first_draft_ms, run)
            # 2. Plan: text → boxes (ReFocus phase 1), one layout per rewrite: the user's
            #    prompt's layout shared by all, or each rewrite's own (RewriteConfig.layout_from).
            layouts = self._plan_layouts(prompt, rewrites, config, rule_layout, first_draft_ms, run)
            # 3+4. Draft N grounded images per rewrite and rank each batch as it lands.
            ranker = HybridRanker(self.scorer, config.lam)
            self._draft_and_rank(rewrites, layouts, plan, seed, ranker, prompt, run)
            # 5. Refine the top-K with low-strength img2img and re-rank, R rounds (phase 3).
            for round_ in range(1, plan.rounds + 1):
                if not self._refine_round(rewrites, layouts, plan, round_, seed, ranker,
                                          prompt, config, run):
                    break
        except RunStopped as stop:
            stopped = stop.reason
            trace.log("stop", f"{stop.reason}: stopped after {len(run.pool)} candidates")
            if not run.pool:  # only cancellation can stop the first draft
                raise Cancelled("cancelled before the first image was made") from None

        if self.on_costs_updated is not None:
            with self._locks.costs:  # persist a snapshot, outside the lock
                snapshot = copy.deepcopy(self.costs)
            self.on_costs_updated(snapshot)
        return _result(prompt, rewrites, layouts, decision, budget_ms, run, stopped)

    # -- stages -----------------------------------------------------------------------------

    def _rewrite(self, prompt, mode, n, seed, reserve_ms, run) -> list[str]:
        if mode == "identity":
            return self.rewriters["identity"].rewrite(prompt, 1, seed)
        with run.turn():  # decide once no other thread's model call is running
            if not run.fits(run.predict("rewrite", n) + reserve_ms):
                run.trace.log("rewrite", "LLM rewriter skipped: does not fit the time left; using the prompt")
                return [prompt]
            with run.unit("rewrite", n):
                rewrites = self.rewriters["llm"].rewrite(prompt, n, seed)
        # identical rewrites would draft identical images; an empty answer leaves the prompt
        rewrites = list(dict.fromkeys(rewrites)) or [prompt]
        for i, text in enumerate(rewrites):
            run.trace.log("rewrite", f"#{i}: {text!r}")
            self._note_token_limit(text, run)
        return rewrites

    def _plan_layouts(self, prompt, rewrites, config, rule_layout: Layout, reserve_ms,
                      run) -> list[Layout]:
        """One layout per rewrite: planned once from the user's prompt, or from each rewrite."""
        if config.planner == "none":
            run.trace.log("plan", "no layout: plain text-to-image")
            return [Layout(source="none")] * len(rewrites)
        if config.rewrite.layout_from == "prompt":
            shared = self._plan_layout(prompt, config.planner, rule_layout, reserve_ms, run)
            return [shared] * len(rewrites)
        planned: dict[str, Layout] = {}
        for text in dict.fromkeys(rewrites):
            rule = rule_layout if text == prompt else self.planners["rule"].plan(text)
            planned[text] = self._plan_layout(text, config.planner, rule, reserve_ms, run)
        return [planned[text] for text in rewrites]

    def _plan_layout(self, text, mode, rule_layout: Layout, reserve_ms, run) -> Layout:
        layout = rule_layout
        if mode == "llm":
            with run.turn():
                if run.fits(run.predict("plan", 1) + reserve_ms):
                    with run.unit("plan", 1):
                        layout = self.planners["llm"].plan(text)
                else:
                    run.trace.log("plan", "LLM planner skipped: does not fit the time left; rule layout used")
        run.trace.log("plan", f"{layout.source} layout: {len(layout.objects)} objects "
                              f"{[o.label for o in layout.objects]}")
        for note in layout.notes:
            run.trace.log("plan", note)
        return layout

    def _draft_and_rank(self, rewrites, layouts, plan, seed, ranker, prompt, run) -> None:
        # The same seeds for every rewrite: the rewrite is then the only variable (2510.12041).
        seeds = [derived_seed(seed, j) for j in range(plan.n_drafts)]
        batch = self.config.draft_batch
        for r, (text, layout) in enumerate(zip(rewrites, layouts)):
            pending = seeds
            while pending:
                new = self._draft_batch(text, layout, r, pending[:batch], plan.steps, run)
                if not new:
                    run.trace.log("draft", f"stopped at {len(run.pool)} drafts: the next does not fit")
                    return
                run.add(self._ranked(new, ranker, prompt, layout, run))
                pending = pending[len(new):]

    def _draft_batch(self, text, layout, r, seeds, steps, run) -> list[Candidate]:
        """Drafts of ``seeds`` (of as many as fit the time left); [] when none fits. The first
        draft of a run always runs, in fewer steps if need be, and alone when there is a
        deadline: it cannot be abandoned, so it is kept small."""
        with run.turn():  # decide once no other thread's model call is running
            first = not run.pool
            want = 1 if first and run.deadline.budget_ms is not None else len(seeds)
            n = self._affordable_batch(want, steps, "draft", run, layout, unstoppable=first)
            if n == 0 and first:
                n, steps = 1, self._first_draft_steps(steps, run, layout)
            if n == 0:
                return []
            seeds = seeds[:n]
            with run.unit("draft", draft_units(n, steps), images=n, steps=steps,
                          interruptible=not first) as on_step:
                images = self.drafter.draft(text, layout, seeds, steps,
                                            **self._step_kwargs("draft", on_step))
        return [Candidate(len(run.pool) + i, img, r, s, 0)
                for i, (img, s) in enumerate(zip(images, seeds))]

    def _refine_round(self, rewrites, layouts, plan, round_, seed, ranker, prompt, config, run) -> bool:
        top = sorted((c for c in run.pool if c.score is not None),
                     key=lambda c: -c.score.total)[:plan.top_k]
        refined = []
        for r in sorted({c.rewrite_index for c in top}):  # one refiner call per conditioning text
            parents, layout = [c for c in top if c.rewrite_index == r], layouts[r]
            new = self._refine_batch(parents, rewrites[r], layout, round_, seed, config, run)
            if not new:
                break
            run.add(self._ranked(new, ranker, prompt, layout, run))
            refined += [c.parent for c in new]
        if not refined:
            run.trace.log("refine", f"round {round_} skipped: it does not fit the time left")
            return False
        run.trace.log("refine", f"round {round_}: refined {refined}")
        return True

    def _refine_batch(self, parents, text, layout, round_, seed, config, run) -> list[Candidate]:
        """Refinements of ``parents`` (of as many as fit the time left); [] when none fits."""
        with run.turn():
            n = self._affordable_batch(len(parents), config.refine_steps, "refine", run, layout)
            if n == 0:
                return []
            parents = parents[:n]
            seeds = [derived_seed(seed, 10_000 * round_ + c.index) for c in parents]
            with run.unit("refine", refine_units(n, config.refine_steps), images=n,
                          steps=config.refine_steps) as on_step:
                images = self.refiner.refine([c.image for c in parents], text, seeds,
                                             config.refine_strength, config.refine_steps,
                                             **self._step_kwargs("refine", on_step))
        return [Candidate(len(run.pool) + i, img, parent.rewrite_index, s, round_, parent=parent.index)
                for i, (img, s, parent) in enumerate(zip(images, seeds, parents))]

    def _ranked(self, new: list[Candidate], ranker, prompt, layout, run) -> list[Candidate]:
        """``new`` with scores set, or left unscored if scoring does not fit the time left.
        A run stopped before scoring keeps ``new`` (unscored) before it stops."""
        units = score_units(len(new), len(layout.objects))
        try:
            with run.turn():
                if not run.fits(run.predict("score", units)):
                    run.trace.log("rank", f"{len(new)} candidates left unscored: scoring does "
                                          "not fit the time left")
                    return new
                with run.unit("score", units):
                    scores = ranker.score([c.image for c in new], prompt, layout)
        except RunStopped:
            run.add(new)
            raise
        return [replace(c, score=score) for c, score in zip(new, scores)]

    def _affordable_batch(self, want: int, steps: int, stage: str, run, layout, *,
                          unstoppable: bool = False) -> int:
        """Largest batch ≤ ``want`` whose model call plus its scoring fits the time left; a
        call the deadline cannot stop (``unstoppable``) must fit at its high estimate."""
        predict = run.predict_high if unstoppable else run.predict
        for b in range(want, 0, -1):
            # draft_units and refine_units agree: images × steps
            if run.fits(predict(stage, draft_units(b, steps))
                        + run.predict("score", score_units(b, len(layout.objects)))):
                return b
        return 0

    def _first_draft_steps(self, steps: int, run, layout) -> int:
        """Most steps ≤ ``steps`` at which one draft, at its high estimate (it cannot be
        stopped), and its scoring fit the time left (≥ 1)."""
        score_ms = run.predict("score", score_units(1, len(layout.objects)))
        fitting = [s for s in range(steps, 0, -1)
                   if run.fits(run.predict_high("draft", draft_units(1, s)) + score_ms)]
        chosen = fitting[0] if fitting else 1
        if chosen < steps:
            run.trace.log("draft", f"first draft at {chosen} steps, not {steps}: the budget is tight")
        return chosen

    def _step_kwargs(self, stage: str, on_step) -> dict:
        return {"on_step": on_step} if self._step_aware[stage] else {}

    # -- helpers ----------------------------------------------------------------------------

    def _plan_budget(self, budget_ms, config, asked, overrides, n_objects, trace, *,
                     given_rewrites: bool = False):
        with self._locks.costs:  # plan on a snapshot: other runs may be updating the costs
            costs = copy.deepcopy(self.costs)

        def decide(cfg):
            # Given rewrites are planned like LLM ones (several texts to draft); the rewrite
            # call they stand for is still budgeted, which only makes the plan conservative.
            return plan_budget(
                budget_ms, costs, self.space,
                llm_rewriter=cfg.rewriter == "llm" or given_rewrites,
                llm_planner=cfg.planner == "llm", refine_available=self.refiner is not None,
                refine_steps=cfg.refine_steps, n_objects=n_objects, overrides=overrides,
                round_gains=cfg.round_gains)

        decision = decide(config)
        # Only stages the caller left on "auto" may be dropped: explicit choices are kept.
        drop = {k: v for k, v in (("rewriter", "identity"), ("planner", "rule"))
                if asked[k] == "auto" and getattr(config, k) == "llm"}
        if not decision.fits and drop and "n_rewrites" not in overrides:
            # The LLM calls alone may not fit: a rule layout and the user's prompt still do.
            cheaper = replace(config, **drop)
            fallback = decide(cheaper)
            if fallback.fits:
                trace.log("budget", "LLM rewriter/planner dropped: they do not fit the budget")
                return cheaper, fallback
        return config, decision

    def _run_config(self, lam, rewriter, planner) -> PipelineConfig:
        config = replace(self.config, **{k: v for k, v in
                                         (("lam", lam), ("rewriter", rewriter), ("planner", planner))
                                         if v is not None})
        resolved = {}
        for kind, mode, table, default in (("rewriter", config.rewriter, self.rewriters, "identity"),
                                           ("planner", config.planner, self.planners, "rule")):
            if mode == "auto":
                # an LLM planner is used by default only where it measured better than the
                # rule planner (LLMPlanner.prefer_in_auto); an LLM rewriter always is
                wanted = table["llm"] is not None and getattr(table["llm"], "prefer_in_auto", True)
                mode = "llm" if wanted else default
            elif mode == "llm" and table["llm"] is None:
                raise InputError(f"{kind}='llm' but this pipeline has no LLM {kind}")
            resolved[kind] = mode
        return replace(config, **resolved)

    def _note_token_limit(self, text: str, run: RunContext) -> None:
        with self._locks.model:  # tokenizers are not safe to share between threads
            n, limit = self.drafter.count_tokens(text), self.drafter.max_prompt_tokens
        if n > limit:
            run.trace.log("input", f"prompt is {n} tokens; the text encoder keeps the first {limit} (truncated)")


def _takes_on_step(method) -> bool:
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # None, or a builtin without a signature
        return False
    return "on_step" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _result(prompt, rewrites, layouts, decision, budget_ms, run, stopped) -> Result:
    pool = run.pool
    best = run.best  # unscored only if the deadline left no time to score anything
    layout = layouts[best.rewrite_index]  # the winner's layout
    timings = dict(run.timings)
    timings["model"] = run.model_ms
    timings["total"] = run.deadline.elapsed_ms()
    run.trace.log("rank", f"winner #{best.index} (round {best.round}) of {len(pool)} candidates")
    return Result(prompt, best.image, best.index, pool, rewrites, layout, decision.plan,
                  budget_ms, decision.predicted_ms, timings, run.trace.events, layouts,
                  cancelled=stopped == "cancelled", stopped_by=stopped)
