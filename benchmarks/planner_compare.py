"""Rule planner vs the real LLM planner (SmolLM2-135M-Instruct GGUF on llama.cpp) on the dev set.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/planner_compare.py [--limit N] [--all]

The LLM planner decodes greedily under the layout JSON-schema grammar on one CPU thread, as a
bundle's planner would. Per planner: the evaluator's metrics (object recall/precision, count
and relation accuracy, ms per call), plus for the LLM planner how many replies parsed as a
layout, how many layouts were used, and why the rest fell back (bucketed by reason). The
machine's load average is recorded next to the timings (other jobs slow a 1-thread run).

By default a fixed stratified subset of ``SUBSET_SIZE`` dev prompts is run (every k-th record
of each style, in file order), since all 170 take ~50 minutes at ~18 s per call; ``--all`` runs
every prompt, ``--limit N`` the first N of the chosen records (a quick check). A third
row, "llm-unchecked", scores the same replies with only the schema and box checks (no
``llm_prompt_check``): what the model's layouts are worth as written. Writes
``benchmarks/results/planner/compare.json`` and prints a table.

The model's raw replies are cached in ``llm_replies.jsonl`` next to it, keyed by the exact chat
sent (system prompt, examples, prompt), with the time each took: the validator and the rule
parser can then be changed and re-scored in seconds (``--fresh`` regenerates). A cached
reply's ms is its generation time plus this run's validation time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT / "benchmarks/planner/dev.jsonl"
GGUF = ROOT / "models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "benchmarks/results/planner/compare.json"
REPLIES = ROOT / "benchmarks/results/planner/llm_replies.jsonl"
SUBSET_SIZE = 60
N_THREADS = 1


def stratified_subset(records: list, size: int) -> list:
    """About ``size`` records, each style in proportion, every k-th in file order (fixed)."""
    by_style: dict[str, list] = {}
    for record in records:
        by_style.setdefault(record.style, []).append(record)
    chosen = []
    for style, group in by_style.items():
        want = max(1, round(size * len(group) / len(records)))
        step = len(group) / want
        chosen += [group[int(i * step)] for i in range(want)]
    return sorted(chosen, key=records.index)


def fallback_reason(note: str) -> str:
    """A fallback note's bucket: the mismatch kind, or the first words of the schema error."""
    from t2i_sdk.planning.llm_planner import FALLBACK_NOTE
    from t2i_sdk.planning.llm_prompt_check import MISMATCH_KINDS

    reason = note[len(FALLBACK_NOTE):]
    for kind in MISMATCH_KINDS:
        if reason.startswith(kind):
            return kind
    if "dropped box" in reason or "no valid object left" in reason:
        return "no usable box"
    if "not a basic color" in reason or "label" in reason:
        return "bad field"
    return reason.split(":")[0][:40]


def chat_key(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:20]


def load_replies(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {r["key"]: r for r in map(json.loads, path.read_text().splitlines()) if r}


class RecordingPlanner:
    """Wraps an LLMPlanner: replies come from the cache or one model call (appended to the
    cache); keeps each reply, whether it parsed as a layout and why it fell back."""

    def __init__(self, planner, cache: dict[str, dict], cache_path: Path):
        self.planner = planner
        self.cache, self.cache_path = cache, cache_path
        self.replies: list[dict] = []
        self.generated = 0

    def _cached_reply(self, prompt: str) -> tuple[str, float]:
        key = chat_key(self.planner.messages(prompt))
        if key not in self.cache:
            start = time.perf_counter()
            reply = self.planner._reply(prompt)
            entry = {"key": key, "prompt": prompt, "reply": reply,
                     "gen_ms": round((time.perf_counter() - start) * 1000.0, 1),
                     "loadavg_1min": round(os.getloadavg()[0], 2)}
            self.cache[key] = entry
            self.generated += 1
            with self.cache_path.open("a") as f:
                f.write(json.dumps(entry) + "\n")
        return self.cache[key]["reply"], self.cache[key]["gen_ms"]

    def plan(self, prompt: str):
        from t2i_sdk.planning.llm_planner import (FALLBACK_NOTE, LayoutJSONError,
                                                  first_json_object, layout_from_json)

        reply, gen_ms = self._cached_reply(prompt)
        self.planner.lm = _Canned(reply, self.planner.lm)
        try:
            start = time.perf_counter()
            layout = self.planner.plan(prompt)
            self.extra_ms = gen_ms + (time.perf_counter() - start) * 1000.0
        finally:
            self.planner.lm = self.planner.lm.real
        json_ok = parsed = False
        try:
            obj = first_json_object(reply)
            json_ok = True
            layout_from_json(obj, prompt)
            parsed = True
        except LayoutJSONError:
            pass
        fell_back = bool(layout.notes) and layout.notes[0].startswith(FALLBACK_NOTE)
        self.replies.append({"prompt": prompt, "reply": reply[:2000], "json": json_ok,
                             "parsed": parsed, "used": not fell_back,
                             "reason": fallback_reason(layout.notes[0]) if fell_back else None,
                             "note": layout.notes[0][:300] if fell_back else None})
        return layout


class UncheckedPlanner:
    """The same cached replies with only the schema/geometry checks (no prompt check): what
    the model's layouts would score if they were used as written."""

    def __init__(self, recording: RecordingPlanner):
        self.recording = recording

    def plan(self, prompt: str):
        from dataclasses import replace

        from t2i_sdk.planning.llm_planner import (LayoutJSONError, first_json_object,
                                                  layout_from_json)

        reply, self.extra_ms = self.recording._cached_reply(prompt)  # ms: the model's call
        try:
            return layout_from_json(first_json_object(reply), prompt)
        except LayoutJSONError as err:
            layout = self.recording.planner.fallback.plan(prompt)
            return replace(layout, notes=(f"unchecked: {err}", *layout.notes))


class _Canned:
    """A ChatLM that answers with one stored reply (the benchmark times the real call)."""

    def __init__(self, reply: str, real):
        self.reply, self.real = reply, real

    def generate(self, messages, n, seed, temperature, top_p, max_new_tokens):
        return [self.reply] * n


def run(planner, records, name: str) -> tuple[dict, list]:
    from t2i_sdk.planning.evaluation import EvalReport, score_layout

    results = []
    for i, record in enumerate(records, 1):
        start = time.perf_counter()
        layout = planner.plan(record.prompt)
        ms = getattr(planner, "extra_ms", None) or (time.perf_counter() - start) * 1000.0
        results.append(score_layout(record, layout, ms))
        if name == "llm":
            print(f"  {name} {i}/{len(records)} {record.id}: {ms / 1000:.1f} s, "
                  f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    report = EvalReport(results, planner=name, source=str(DEV_SET.relative_to(ROOT)))
    return report.to_dict(), report.format_table()


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 1) if values else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N chosen prompts")
    ap.add_argument("--all", action="store_true", help="every dev prompt, not the subset")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--fresh", action="store_true", help="regenerate cached replies")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if not GGUF.exists():
        print(f"error: {GGUF} is missing (make smollm2)", file=sys.stderr)
        return 2

    from t2i_engines import threads
    threads.configure(threads.CpuThreads(N_THREADS, False))
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine
    from t2i_sdk.planning import LLMPlanner, RulePlanner
    from t2i_sdk.planning.evaluation import load_eval_set
    from t2i_sdk.planning.layout_schema import LAYOUT_JSON_SCHEMA

    records = load_eval_set(DEV_SET)
    chosen = records if args.all else stratified_subset(records, SUBSET_SIZE)
    chosen = chosen[:args.limit] if args.limit else chosen
    load_before = os.getloadavg()
    rule, rule_table = run(RulePlanner(), chosen, "rule")
    engine = LlamaCppEngine.load(GGUF, device="cpu", json_schema=LAYOUT_JSON_SCHEMA)
    REPLIES.parent.mkdir(parents=True, exist_ok=True)
    cache = {} if args.fresh else load_replies(REPLIES)
    llm = RecordingPlanner(LLMPlanner(engine), cache, REPLIES)
    if any(chat_key(llm.planner.messages(r.prompt)) not in cache for r in chosen):
        llm.planner.plan(chosen[0].prompt)  # warm-up (closing-bias table); not scored
    started = time.time()
    llm_dict, llm_table = run(llm, chosen, "llm")
    wall_s = time.time() - started
    unchecked, unchecked_table = run(UncheckedPlanner(llm), chosen, "llm-unchecked")
    engine.close()
    n = len(llm.replies)
    reasons = Counter(r["reason"] for r in llm.replies if r["reason"])
    summary = {
        "n_prompts": n, "subset": "all" if args.all else f"stratified {SUBSET_SIZE}",
        "limit": args.limit, "model": GGUF.name, "n_threads": N_THREADS,
        "decoding": "greedy, JSON-schema grammar (layout_schema.LAYOUT_JSON_SCHEMA), "
                    "max_new_tokens 256",
        "replies_json": sum(r["json"] for r in llm.replies),
        "replies_parsed": sum(r["parsed"] for r in llm.replies),
        "layouts_used": sum(r["used"] for r in llm.replies),
        "fallback_rate": (n - sum(r["used"] for r in llm.replies)) / n if n else None,
        "fallback_reasons": dict(reasons.most_common()),
        "llm_wall_s": round(wall_s, 1),
        "replies_generated_now": llm.generated,
        "gen_loadavg_1min_median": _median([
            cache[chat_key(llm.planner.messages(r.prompt))]["loadavg_1min"] for r in chosen]),
        "gen_ms_median": _median([cache[chat_key(llm.planner.messages(r.prompt))]["gen_ms"]
                                  for r in chosen]),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rule": rule, "llm": llm_dict,
                                    "llm_unchecked": unchecked, "llm_replies": llm.replies},
                                   indent=1) + "\n")
    print(rule_table, "\n", llm_table, "\n", unchecked_table, sep="\n")
    print(f"\nLLM replies parsed {summary['replies_parsed']}/{n}, layouts used "
          f"{summary['layouts_used']}/{n}; fallbacks: {summary['fallback_reasons']}")
    print(f"load average before {summary['loadavg_before']}, after {summary['loadavg_after']} "
          f"({summary['cpu_count']} CPUs); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
