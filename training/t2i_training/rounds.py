"""One round of iterative DPO (arXiv 2510.12041), as resumable units of work:

    sample  n rewrites per prompt from the policy after round r−1 (temperature 1.5)
    render  each rewrite with the frozen T2I, ONE seed per prompt (the rewrite is the variable)
    judge   all n(n−1) ordered pairs on every dimension -> VoteTable -> (chosen, rejected)
    dpo     one DPO update against the previous policy (see ``t2i_training.dpo``)
    eval    held-out prompts: this round's policy vs the previous one and vs the raw prompt

Each unit is saved by ``RunDir`` as it finishes; a killed round resumes at the first missing
unit. ``train`` runs every round of a config.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from t2i_sdk.config import RewriteConfig
from t2i_sdk.errors import InputError

from t2i_training import report as reports
from t2i_training.config import JudgeSpec, RunConfig
from t2i_training.data import (load_prompts, prompt_specs, round_prompts, split_prompts,
                               spread_subset, stable_seed)
from t2i_training.evaluation import evaluate_prompt
from t2i_training.judges.http_judge import JudgeServerError
from t2i_training.judges.protocol import PairwiseJudge, Sample
from t2i_training.policy import (Policy, load_policy, read_adapter_metrics, sample_rewrites,
                                 save_adapter, use_adapter)
from t2i_training.preferences import VoteTable, ordered_pairs, ranked_pairs
from t2i_training.run_dir import RoundDir, RunDir

if TYPE_CHECKING:
    from PIL.Image import Image

PHASES = ("sample", "render", "judge", "dpo", "eval")
EVAL_MATCHES = {"vs_previous": ("current", "previous"), "vs_original": ("current", "original")}


class Renderer(Protocol):
    def render(self, prompt: str, text: str, seed: int) -> "Image":
        """The image the deployed pipeline makes for the user's ``prompt`` rewritten as
        ``text`` (``text == prompt``: no rewrite)."""


class PipelineRenderer:
    """The frozen T2I as deployed: the rewrite drafts the image, the layout is planned from
    the user's prompt or the rewrite as ``rewrite.layout_from`` says (the rule planner), one
    draft, no refinement. Loaded on first use."""

    def __init__(self, bundle: str | Path, *, steps: int, device: str = "auto",
                 rewrite: RewriteConfig = RewriteConfig()):
        self.bundle, self.steps, self.device, self.rewrite = Path(bundle), steps, device, rewrite
        self._pipe = None

    def render(self, prompt: str, text: str, seed: int) -> "Image":
        if self._pipe is None:
            from t2i_sdk import Pipeline
            pipe = Pipeline.from_pretrained(self.bundle, device=self.device, calibrate=False)
            pipe.config = replace(pipe.config, rewrite=self.rewrite)
            self._pipe = pipe
        return self._pipe(prompt, rewrites=[text], n_drafts=1, steps=self.steps, rounds=0,
                          planner="rule", seed=seed).image

    def close(self) -> None:
        """Release the pipeline's models (a GGUF component's llama.cpp model included); a
        later ``render`` loads the bundle again."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()


class BlankRenderer:
    """No T2I at all, for judges that ignore images: every render is the same gray square."""

    def render(self, prompt: str, text: str, seed: int) -> "Image":
        from PIL import Image
        return Image.new("RGB", (8, 8), (128, 128, 128))


def build_judge(spec: JudgeSpec, specs: dict[str, str] | None = None) -> PairwiseJudge:
    """The judge a :class:`JudgeSpec` names (heavy judges import lazily). ``specs``: typed
    prompt -> canonical caption, for the shapes judge (from jsonl prompt files)."""
    if spec.kind == "programmatic":
        from t2i_training.judges import programmatic
        prefer = getattr(programmatic, spec.prefer, None)
        if not callable(prefer) or spec.prefer.startswith("_"):
            raise InputError(f"judge.prefer: no scoring function {spec.prefer!r} in "
                             f"t2i_training.judges.programmatic")
        return programmatic.ProgrammaticJudge(prefer, **spec.options)
    if spec.kind == "shapes":
        from t2i_training.judges.shapes_judge import ShapesJudge
        try:
            return ShapesJudge(**{"specs": specs, **spec.options})
        except TypeError as e:  # a missing or misspelled option
            raise InputError(f"judge.options: {e}") from None
    if spec.kind == "vlm":
        from t2i_training.judges.vlm import VLMJudge
        return VLMJudge(**spec.options)
    if spec.kind == "http":
        from t2i_training.judges.http_judge import HTTPJudge
        try:
            return HTTPJudge(**spec.options)
        except TypeError as e:  # a missing or misspelled option
            raise InputError(f"judge.options: {e}") from None
    import importlib
    module, _, name = spec.target.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise InputError(f"judge.target {spec.target!r}: {e}") from None
    return factory(**spec.options)


def check_judge(judge: PairwiseJudge) -> None:
    """Ask the judge one question if it has a ``check()`` (the HTTP judge does), so a dead,
    slow or misconfigured judge server fails in seconds, before sampling and rendering spend
    minutes on work the judge phase would then stop at. Raises what ``check()`` raises (for
    the HTTP judge: ``JudgeServerError``, a ``T2IError``)."""
    check = getattr(judge, "check", None)
    if not callable(check):
        return
    try:
        check()
    except JudgeServerError as exc:
        raise JudgeServerError(f"the judge failed a test question before any work started: "
                               f"{exc}") from None


def render_seed(config: RunConfig, prompt: str) -> int:
    """The one drafter seed of ``prompt``: shared by all its rewrites and all rounds."""
    return stable_seed(config.seed, "render", prompt)


@dataclass
class RoundEnv:
    """What every round shares. ``progress(phase, done, total)``; ``log(line)``."""

    config: RunConfig
    run: RunDir
    base_model: Path
    judge: PairwiseJudge
    renderer: Renderer
    progress: Callable[[str, int, int], None] = field(default=lambda phase, done, total: None)
    log: Callable[[str], None] = field(default=lambda line: None)

    def load_policy(self, adapter: Path | None, previous: Path | None = None) -> Policy:
        policy = load_policy(
            self.base_model, adapter_dir=adapter, lora=self.config.lora,
            extra_adapters={"previous": previous} if previous else None,
            quantization=self.config.quantization, device=self.config.device,
            gradient_checkpointing=self.config.dpo.gradient_checkpointing)
        for note in policy.notes:
            self.log(note)
        return policy


class _LazyPolicy:
    """The policy after round r−1, loaded only if a phase still needs it."""

    def __init__(self, env: RoundEnv, adapter: Path | None):
        self.env, self.adapter, self.policy = env, adapter, None

    def get(self) -> Policy:
        if self.policy is None:
            self.policy = self.env.load_policy(self.adapter)
        return self.policy

    def release(self) -> None:
        self.policy = None
        _free_memory()


def run_round(env: RoundEnv, index: int, prompts: list[str], held_out: list[str]) -> dict:
    """Run (or finish) round ``index`` >= 1 and return its report (see ``report.py``)."""
    rd = env.run.round(index)
    if rd.is_complete():
        return rd.read_report()
    if not prompts:
        raise InputError("no training prompts for this round")
    holder = _LazyPolicy(env, env.run.adapter_after(index - 1))
    with _timed(rd, "sample"):
        rewrites = _sample_phase(env, rd, prompts, holder)
    with _timed(rd, "render"):
        renders = _render_phase(env, rd, prompts, rewrites)
    with _timed(rd, "judge"):
        pairs = _judge_phase(env, rd, prompts, rewrites, renders)
    with _timed(rd, "dpo"):
        metrics = _dpo_phase(env, rd, pairs, holder)
    holder.release()
    with _timed(rd, "eval"):
        evals = _eval_phase(env, rd, held_out)
    report = reports.round_report(index, env.config.dimensions, rewrites=list(rewrites.values()),
                                  pairs=list(pairs.values()), evals=list(evals.values()),
                                  dpo=metrics, timings=_read_timings(rd))
    rd.write_report(report)
    return report


def _sample_phase(env: RoundEnv, rd: RoundDir, prompts: list[str], holder: _LazyPolicy) -> dict:
    s, log = env.config.sampling, rd.log("rewrites")
    done = _checked(log, prompts)
    for i, prompt in enumerate(prompts):
        if i in done:
            continue
        seed = stable_seed(env.config.seed, "sample", rd.index, prompt)
        rewrites = sample_rewrites(holder.get(), prompt, s.n_rewrites, seed,
                                   temperature=s.temperature, top_p=s.top_p,
                                   max_new_tokens=s.max_new_tokens, rewrite=env.config.rewrite)
        done[i] = {"index": i, "prompt": prompt, "seed": seed,
                   "rewrites": [asdict(r) for r in rewrites]}
        log.append(done[i])
        env.progress("sample", len(done), len(prompts))
    return done


def _render_phase(env: RoundEnv, rd: RoundDir, prompts: list[str], rewrites: dict) -> dict:
    log = rd.log("renders")
    done = _checked(log, prompts)
    for i, prompt in enumerate(prompts):
        if i in done:
            continue
        seed = render_seed(env.config, prompt)
        texts = [r["text"] for r in rewrites[i]["rewrites"]]
        names = {t: rd.save_image(env.renderer.render(prompt, t, seed))
                 for t in dict.fromkeys(texts)}
        done[i] = {"index": i, "prompt": prompt, "seed": seed, "images": [names[t] for t in texts]}
        log.append(done[i])
        env.progress("render", len(done), len(prompts))
    return done


def _judge_phase(env: RoundEnv, rd: RoundDir, prompts, rewrites: dict, renders: dict) -> dict:
    votes_log, pairs_log = rd.log("votes"), rd.log("pairs")
    votes, pairs = _checked(votes_log, prompts), _checked(pairs_log, prompts)
    dims = env.config.dimensions
    for i, prompt in enumerate(prompts):
        if i not in votes:
            table = _judge_prompt(env.judge, prompt, rewrites[i], renders[i], rd, dims)
            votes[i] = {"index": i, "prompt": prompt, "table": table.to_dict()}
            votes_log.append(votes[i])
        if i not in pairs:
            table = VoteTable.from_dict(votes[i]["table"])
            pairs[i] = _pair_record(i, prompt, rewrites[i]["rewrites"], table, dims,
                                    seed=stable_seed(env.config.seed, "pair", rd.index, prompt),
                                    tie_break=env.config.tie_break,
                                    limit=env.config.pairs_per_prompt)
            pairs_log.append(pairs[i])
        env.progress("judge", len(pairs), len(prompts))
    return pairs


def _judge_prompt(judge, prompt, rewrite_rec, render_rec, rd: RoundDir, dims) -> VoteTable:
    images = {name: rd.load_image(name) for name in dict.fromkeys(render_rec["images"])}
    samples = [Sample(r["text"], images[name])
               for r, name in zip(rewrite_rec["rewrites"], render_rec["images"])]
    table = VoteTable(len(samples))
    for dim in dims:
        for a, b in ordered_pairs(len(samples)):
            table.add(dim, a, b, judge.compare(prompt, samples[a], samples[b], dim))
    return table


def _pair_record(i: int, prompt: str, rewrites: list[dict], table: VoteTable, dims, *,
                 seed: int, tie_break: str = "random", limit: int = 1) -> dict:
    """The prompt's first (chosen, rejected) pair in the record's own fields, and up to
    ``limit - 1`` more with other texts under ``"more"`` (present only when ``limit > 1``)."""
    scores = table.scores(dims)
    record = {"index": i, "prompt": prompt, "scores": scores, "unparsed": table.unparsed}
    choices = ranked_pairs(scores, seed, lengths=[r["n_tokens"] for r in rewrites],
                           tie_break=tie_break)
    if not choices:
        return {**record, "skipped": "tie"}
    texts = [(rewrites[c]["raw"], rewrites[r]["raw"]) for c, r in choices]
    if texts[0][0] == texts[0][1]:
        return {**record, "skipped": "identical"}
    kept = [0]  # the paper's pair first, then other best x worst pairs with new texts
    for k in range(1, len(choices)):
        new_texts = texts[k][0] != texts[k][1] and texts[k] not in {texts[j] for j in kept}
        if len(kept) < limit and new_texts:
            kept.append(k)
    first, *more = (_pair_fields(rewrites, *choices[k]) for k in kept)
    return {**record, "skipped": None, **first, **({"more": more} if limit > 1 else {})}


def _pair_fields(rewrites: list[dict], chosen: int, rejected: int) -> dict:
    return {"chosen": chosen, "rejected": rejected,
            "chosen_raw": rewrites[chosen]["raw"], "rejected_raw": rewrites[rejected]["raw"],
            "chosen_tokens": rewrites[chosen]["n_tokens"],
            "rejected_tokens": rewrites[rejected]["n_tokens"]}


def dpo_pairs(records) -> list[dict]:
    """Every preference pair DPO trains on from a round's pair records (skipped ones give
    none; a record's ``"more"`` pairs follow its first)."""
    out = []
    for p in records:
        if p["skipped"] is None:
            out += [{"prompt": p["prompt"], **pair} for pair in [p, *p.get("more", [])]]
    return out


def _dpo_phase(env: RoundEnv, rd: RoundDir, pairs: dict, holder: _LazyPolicy) -> dict:
    if rd.has_adapter():
        return read_adapter_metrics(rd.adapter_dir)
    usable = dpo_pairs(pairs.values())
    policy = holder.get()
    if not usable:
        env.log(f"round {rd.index}: no preference pairs (all ties); the policy is unchanged")
        metrics = {"pairs": 0, "steps": 0}
    else:
        from t2i_training.dpo import train_dpo
        metrics = train_dpo(policy, usable, env.config.dpo, rd.scratch_dir,
                            seed=stable_seed(env.config.seed, "dpo", rd.index),
                        rewrite=env.config.rewrite,
                            on_step=lambda step, total: env.progress("dpo", step, total))
    metrics["quantization"] = policy.quantization
    save_adapter(policy, rd.adapter_dir, metrics)
    return metrics


def _eval_phase(env: RoundEnv, rd: RoundDir, held_out: list[str]) -> dict:
    log = rd.log("eval")
    done = _checked(log, held_out)
    todo = [i for i in range(len(held_out)) if i not in done]
    if not todo:
        return done
    previous = env.run.adapter_after(rd.index - 1)
    policy = env.load_policy(rd.adapter_dir, previous)
    deployed = env.config.rewrite  # held-out rewrites are sampled as the bundle will
    for i in todo:
        prompt = held_out[i]
        seed = stable_seed(env.config.seed, "eval", prompt)

        def one(adapter):
            with use_adapter(policy, adapter):
                return sample_rewrites(policy, prompt, 1, seed, temperature=deployed.temperature,
                                       top_p=deployed.top_p,
                                       max_new_tokens=deployed.max_new_tokens,
                                       rewrite=deployed)[0]

        current, prev = one("default"), one("previous" if previous else None)
        r_seed = render_seed(env.config, prompt)
        record = evaluate_prompt(
            prompt, {"current": current.text, "previous": prev.text, "original": prompt},
            EVAL_MATCHES, env.judge, lambda text: env.renderer.render(prompt, text, r_seed),
            env.config.dimensions, rd.save_image)
        done[i] = {"index": i, "prompt": prompt,
                   "tokens": {"current": current.n_tokens, "previous": prev.n_tokens}, **record}
        log.append(done[i])
        env.progress("eval", len(done), len(held_out))
    del policy
    _free_memory()
    return done


def _checked(log, prompts: list[str]) -> dict[int, dict]:
    """The log's finished units, refusing ones made for a different prompt list."""
    records = log.read()
    for i, record in records.items():
        if i >= len(prompts) or record["prompt"] != prompts[i]:
            raise InputError(f"{log.path}: unit {i} was made for {record['prompt']!r}, which is "
                             f"not prompt {i} now; the prompt file changed since the run began")
    return records


@contextmanager
def _timed(rd: RoundDir, phase: str):
    """Add this process's seconds in ``phase`` to ``timings.json`` (resumes accumulate)."""
    import json

    from t2i_sdk.bundle.atomic import atomic_write_text

    start = time.perf_counter()
    try:
        yield
    finally:
        timings = _read_timings(rd)
        timings[phase] = round(timings.get(phase, 0.0) + time.perf_counter() - start, 3)
        atomic_write_text(rd.path / "timings.json", json.dumps(timings, indent=2))


def _read_timings(rd: RoundDir) -> dict[str, float]:
    import json

    path = rd.path / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _free_memory() -> None:
    import gc
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def resolve_base_model(config: RunConfig) -> Path:
    """``config.base_model``, else the rewriter LLM inside ``config.bundle``."""
    if config.base_model:
        return Path(config.base_model)
    from t2i_sdk.bundle import component_dir, load_bundle
    manifest = load_bundle(config.bundle, verify=False)
    entry = manifest.components.get("rewriter")
    if entry is None or entry.engine != "torch":
        raise InputError(f"{config.bundle}: no torch rewriter LLM in this bundle; "
                         f"set base_model to a causal LM folder")
    return component_dir(config.bundle, entry)


def train(config: RunConfig, *, judge: PairwiseJudge | None = None,
          renderer: Renderer | None = None, progress=None, log=None,
          on_round: Callable[[dict], None] | None = None) -> list[dict]:
    """Every round of ``config`` (finished rounds are read back, not redone); returns reports."""
    prompts = load_prompts(config.prompts)
    if config.eval_prompts:  # a fixed split (e.g. the shapes world's held-out compositions)
        train_set, held_out = prompts, load_prompts(config.eval_prompts)
    else:
        train_set, held_out = split_prompts(prompts, config.held_out_fraction, config.seed)
    held_out = spread_subset(held_out, config.max_eval_prompts)
    run = RunDir(config.run_dir).open(config)
    own_renderer = renderer is None  # one made here is closed here
    if renderer is None:
        renderer = (PipelineRenderer(config.bundle, steps=config.render_steps,
                                     device=config.device, rewrite=config.rewrite)
                    if config.render else BlankRenderer())
    specs = {**prompt_specs(config.prompts), **prompt_specs(config.eval_prompts)}
    env = RoundEnv(config, run, resolve_base_model(config),
                   judge or build_judge(config.judge, specs), renderer)
    if progress is not None:
        env.progress = progress
    if log is not None:
        env.log = log
    if set(range(1, config.rounds + 1)) - set(run.completed_rounds()):
        check_judge(env.judge)
    out = []
    try:
        for index in range(1, config.rounds + 1):
            prompts_r = round_prompts(train_set, config.prompts_per_round, config.seed, index)
            out.append(run_round(env, index, prompts_r, held_out))
            if on_round is not None:
                on_round(out[-1])
    finally:
        if own_renderer and isinstance(renderer, PipelineRenderer):
            renderer.close()
    return out
