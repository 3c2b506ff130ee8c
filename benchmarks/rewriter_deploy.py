"""``rewriter_shapes.py deploy`` and ``report``: the trained rewriter as shipped (merged, GGUF,
llama.cpp inside the Pipeline) and the round table. See rewriter_shapes.py."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from rewriter_shapes import ROOT, AdapterRewriter, held_out_items, load_pipeline, score, _save

GGUF_TYPES = ("q8_0", "q4_k")
ADAPTER_DIR = ROOT / "bundles" / "rewriter-smollm2" / "adapter"  # committed (<= 20 MB)


def cmd_deploy(args) -> int:
    from t2i_export.cli import main as t2i_export
    from t2i_sdk import Pipeline
    from t2i_sdk.stages.rewrite import LLMRewriter
    from t2i_training.config import load_config
    from t2i_training.finalize import finalize
    from t2i_training.run_dir import RunDir

    config = load_config(args.config)
    run = RunDir(ROOT / config.run_dir)
    adapter = run.adapter_after(config.rounds)
    final = finalize(config, ROOT / config.base_model, adapter, run.final_dir, log=print)
    items = held_out_items(config)
    out = Path(args.out)
    path = out / "deploy.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    greedy = replace(config.rewrite, temperature=0.0)

    if "transformers@greedy" not in results:
        pipe = load_pipeline(config)
        llm = AdapterRewriter(ROOT / config.base_model)
        llm.use("final", adapter)
        pipe.rewriters["llm"] = LLMRewriter(llm, greedy)
        results["transformers@greedy"] = score(pipe, items, rewriter="llm", n_rewrites=1,
                                               label="transformers greedy")
        _save(path, results)
    for q in GGUF_TYPES:
        bundle = run.final_dir / f"bundle-gguf-{q}"
        if not (bundle / "bundle.json").is_file():
            code = t2i_export(["bundle", str(final.bundle_dir), str(bundle), "--engines", "torch",
                               "--llm", f"gguf:{q}", "--overwrite"])
            if code != 0:
                return code
        gguf = next(bundle.rglob("*.gguf"))
        results.setdefault("gguf_bytes", {})[q] = gguf.stat().st_size
        pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False)
        deployed = pipe.rewriters["llm"].config
        for key, rewrite in ((f"llama.cpp-{q}@greedy", replace(deployed, temperature=0.0)),
                             (f"llama.cpp-{q}@deployed", deployed)):
            if key in results:
                continue
            pipe.rewriters["llm"] = LLMRewriter(pipe.rewriters["llm"].lm, rewrite)
            results[key] = score(pipe, items, rewriter="llm", n_rewrites=1, label=key)
            _save(path, results)
        print(q, {k: results[k]["overall"] for k in results if q in k})
    results["adapter_bytes"] = sum(f.stat().st_size for f in Path(adapter).glob("*.safetensors"))
    results["tokens_per_s"] = _llama_tokens_per_s(run.final_dir / "bundle-gguf-q4_k")
    _save(path, results)
    return 0


def _llama_tokens_per_s(bundle: Path) -> dict:
    """Generation speed of the q4_k rewriter alone: one 32-token greedy reply, 1 thread."""
    from t2i_sdk import Pipeline

    pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False)
    lm = pipe.rewriters["llm"].lm
    messages = [{"role": "user", "content": "draw two stars"}]
    lm.generate(messages, n=1, seed=0, temperature=0.0, max_new_tokens=8)  # warm
    start = time.perf_counter()
    text = lm.generate(messages, n=1, seed=0, temperature=0.0, max_new_tokens=32)[0]
    seconds = time.perf_counter() - start
    n = lm.count_tokens(text)
    return {"tokens": n, "seconds": round(seconds, 3), "tokens_per_s": round(n / seconds, 1)}


def cmd_report(args) -> int:
    from t2i_training.config import load_config

    config = load_config(args.config)
    out = Path(args.out)
    accuracy = json.loads((out / "accuracy.json").read_text())
    rounds = []
    for r in range(1, config.rounds + 1):
        report = ROOT / config.run_dir / f"round_{r:02d}" / "report.json"
        if report.is_file():
            rounds.append(json.loads(report.read_text()))
    rows = round_rows(accuracy, rounds)
    summary = {"rounds": rows, "meta": accuracy.get("meta")}
    deploy = out / "deploy.json"
    if deploy.is_file():
        d = json.loads(deploy.read_text())
        summary["deploy"] = {k: (v["overall"] if isinstance(v, dict) and "overall" in v else v)
                             for k, v in d.items()}
        summary["deploy"]["rewrite_ms_mean"] = {k: v.get("rewrite_ms_mean") for k, v in d.items()
                                                if isinstance(v, dict) and "rewrite_ms_mean" in v}
    summary["rule_planner_reads"] = {name: planner_reads(out / f"identity_{name}.json")
                                     for name in ("canonical", "freeform")
                                     if (out / f"identity_{name}.json").is_file()}
    _save(out / "rewriter.json", summary)
    (out / "table.md").write_text(markdown_table(rows) + "\n")
    print(markdown_table(rows))
    write_checks(out)
    plot(rows, out / "rewriter_rounds.png")
    return 0


def planner_reads(eval_json: Path) -> str:
    """How many prompts of a `t2i eval` report the rule planner laid out exactly as their spec
    asks (every shape, colour and count; from the records' layouts and metadata)."""
    from collections import Counter

    records = json.loads(eval_json.read_text())["prompts"]
    right = 0
    for r in records:
        want = Counter()
        for q in r["metadata"]["include"]:
            want[(q["class"], q.get("color"))] += q["count"]
        right += want == Counter((o["label"], o.get("color")) for o in r["layout"]["objects"])
    return f"{right}/{len(records)}"


def round_rows(accuracy: dict, rounds: list[dict]) -> list[dict]:
    """One row per policy (base = round 0): pairs kept, judge win rate vs the user's prompt,
    held-out accuracy at n_rewrites 1 and 3, median rewrite length, CPU minutes."""
    def acc(name, n):
        entry = accuracy.get(f"{name}@n{n}")
        return None if entry is None else entry["overall"]

    def strict(name):
        entry = accuracy.get(f"{name}@n1")
        return None if entry is None else strict_accuracy(entry["records"])

    rows = [{"policy": "identity (user's prompt)", "acc_n1": acc("identity", 1),
             "strict_n1": strict("identity")},
            {"policy": "base SmolLM2 (round 0)", "acc_n1": acc("base", 1), "acc_n3": acc("base", 3),
             "strict_n1": strict("base")}]
    for rep in rounds:
        r = rep["round"]
        rows.append({"policy": f"DPO round {r}", "prompts": rep["prompts"], "pairs": rep["pairs"],
                     "dpo_pairs": rep.get("dpo_pairs", rep["pairs"]),
                     "win_vs_prompt": rep["win_rate"]["vs_original"]["mean"],
                     "win_vs_previous": rep["win_rate"]["vs_previous"]["mean"],
                     "dpo_loss": [rep["dpo"].get("first_loss"), rep["dpo"].get("loss")],
                     "reward_accuracy": rep["dpo"].get("reward_accuracy"),
                     "tokens_p50": rep["prompt_tokens"]["eval"].get("p50"),
                     "cpu_min": round(sum(rep["timings_s"].values()) / 60, 1),
                     "acc_n1": acc(f"round_{r}", 1), "acc_n3": acc(f"round_{r}", 3),
                     "strict_n1": strict(f"round_{r}")})
    return rows


def strict_accuracy(records: list[dict]) -> float:
    """Share of prompts judged correct (GenEval rules) whose one rewrite names no shape the user
    did not ask for. GenEval ignores extra objects, so a rewriter can hedge ("a rhombus" ->
    "a diamond and a square" is correct); this counts such answers as wrong. A prompt drawn
    as typed (no rewrite) adds nothing it did not ask for."""
    from t2i_training.judges.shapes_judge import parse_caption

    right = 0
    for r in records:
        asked = {q.cls for q in parse_caption(r["prompt"]).include}
        rewrites = r.get("rewrites") or [None]
        if len(rewrites) > 1:
            raise ValueError("strict accuracy reads n_rewrites = 1 records (which rewrite made "
                             "the kept image is not recorded)")
        rewrite = rewrites[0]
        right += r["correct"] and (not rewrite or shapes_named(rewrite) <= asked)
    return right / len(records)


def write_checks(out: Path) -> int:
    """``OUT/checks.txt`` from ``OUT/accuracy.json`` alone (no run dir needed)."""
    checks = "\n".join(answer_checks(json.loads((out / "accuracy.json").read_text()))) + "\n"
    (out / "checks.txt").write_text(checks)
    print(checks, end="")
    return 0


def answer_checks(accuracy: dict) -> list[str]:
    """What the accuracy figures are made of: per n = 1 contestant, how many correct images
    came from a caption asking for exactly what the user asked (the rest hedge or get lucky)
    and the strict accuracy;
    per n = 3 contestant, the prompts it lost and won against n = 1, and in how many lost
    ones n = 1's right caption was among the three (the same image: the ranker chose another)."""
    from rewriter_dpo_ablation import asks_exactly
    from t2i_training.judges.shapes_judge import parse_caption

    lines = []
    for key, entry in accuracy.items():
        if not key.endswith("@n1") or key.startswith("identity"):
            continue
        correct = [r for r in entry["records"] if r["correct"]]
        exact = sum(asks_exactly(r["rewrites"][0], parse_caption(r["prompt"])) for r in correct)
        lines.append(f"{key}: correct {len(correct)} of {len(entry['records'])}, "
                     f"{exact} of them from the exact caption; strict accuracy "
                     f"{strict_accuracy(entry['records']):.3f}")
        three = accuracy.get(key[:-1] + "3")
        if three is not None:
            one = {r["prompt"]: r for r in entry["records"]}
            lost = [r for r in three["records"] if one[r["prompt"]]["correct"] and not r["correct"]]
            won = sum(r["correct"] and not one[r["prompt"]]["correct"] for r in three["records"])
            held = sum(one[r["prompt"]]["rewrites"][0] in r["rewrites"] for r in lost)
            lines.append(f"{key[:-1]}3 vs n1: lost {len(lost)}, won {won}; in {held} of the "
                         f"lost, n1's right caption was among the three")
    return lines


def shapes_named(text: str) -> set[str]:
    """The shapes-world shape kinds ``text`` names (singular or plural)."""
    import re

    from t2i_sdk.shapes.captions import make_plural
    from t2i_sdk.shapes.world import SHAPES

    return {s for s in SHAPES if re.search(rf"\b({s}|{make_plural(s)})\b", text.lower())}


def markdown_table(rows: list[dict]) -> str:
    def f(v, digits=3):
        return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

    lines = ["| policy | pairs / prompts | win rate vs user's prompt | vs previous round | "
             "DPO loss first → last | accuracy n=1 | accuracy n=3 | strict n=1 | "
             "rewrite tokens (p50) | round CPU min |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        loss = row.get("dpo_loss")
        lines.append("| " + " | ".join([
            row["policy"],
            _pairs_cell(row),
            f(row.get("win_vs_prompt"), 2), f(row.get("win_vs_previous"), 2),
            f"{f(loss[0])} → {f(loss[1])}" if loss else "–",
            f(row.get("acc_n1")), f(row.get("acc_n3")), f(row.get("strict_n1")),
            f(row.get("tokens_p50")),
            f(row.get("cpu_min"), 1)]) + " |")
    return "\n".join(lines)


def _pairs_cell(row: dict) -> str:
    """"prompts with a pair / prompts", plus "(DPO pairs)" where a prompt gave several."""
    if "pairs" not in row:
        return "–"
    extra = row.get("dpo_pairs", row["pairs"])
    return f"{row['pairs']} / {row['prompts']}" + (f" ({extra})" if extra != row["pairs"] else "")


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = [r for r in rows if r["policy"].startswith(("base", "DPO"))]
    x = list(range(len(policies)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("acc_n1", "n_rewrites = 1"), ("acc_n3", "n_rewrites = 3")):
        left.plot(x, [r.get(key) for r in policies], marker="o", label=label)
    identity = rows[0].get("acc_n1")
    if identity is not None:
        left.axhline(identity, color="gray", linestyle="--", label="identity (user's prompt)")
    left.set(xlabel="DPO round (0 = base SmolLM2)", ylabel="held-out accuracy (GenEval rules)",
             title="free-form prompts, 1 draft per rewrite", ylim=(0, 1))
    left.legend(fontsize=8)
    wins = [(i, r["win_vs_prompt"]) for i, r in enumerate(policies) if r.get("win_vs_prompt") is not None]
    right.plot([i for i, _ in wins], [w for _, w in wins], marker="o", color="C2")
    right.axhline(0.5, color="gray", linestyle="--")
    right.set(xlabel="DPO round", ylabel="judge win rate vs user's prompt", ylim=(0, 1),
              title="pairwise shapes judge, 4 dimensions, both orders")
    for ax in (left, right):
        ax.set_xticks(x)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
