"""Is the rewriter's DPO under-trained? One round's judged samples, trained three ways from
the base model, each policy's captions scored as text (issue 11's ablation).

v4 took 6–8 optimiser steps a round (one pair per prompt, one epoch, batch 4), its round-4 DPO
loss went 0.693 → 0.685, and the share of sampled captions naming every asked shape and colour
stayed at 0.23–0.30 in every round. If too few steps is why, more steps on the same judged
samples should raise the right-caption rate, on training prompts first.

    OMP_NUM_THREADS=1 t2i-train dpo --config training/examples/shapes_smollm2_v5.yaml \
        --rounds 1 --no-export
    OMP_NUM_THREADS=1 python benchmarks/rewriter_dpo_ablation.py train runs/dpo-smollm2-v5
    OMP_NUM_THREADS=1 python benchmarks/rewriter_dpo_ablation.py score runs/dpo-smollm2-v5
    python benchmarks/rewriter_dpo_ablation.py report

v5 is v4 with ``pairs_per_prompt: 4``: its round 1 samples, renders and votes are v4 round 1's
(same seeds), and its own round-1 adapter is the "all pairs" policy. ``train`` adds, from the
base model on that round's pairs, "paper pair, 1 epoch" (v4 round 1 as run) and "paper pair,
3 epochs". ``score`` samples ``N_SAMPLES`` captions per prompt at the deployed temperature
from every policy (and the base model) on the 96 held-out prompts and 64 training prompts the
round did not use, and counts, without drawing anything: the exact caption the user asked for
(the drafter draws those right 0.96 of the time), and a caption that names every asked shape
and colour. (The committed results were made on a run dir whose config differed from v5's
only in ``rounds: 1`` and ``max_eval_prompts: 6``, which the units above do not read.)
Results: ``benchmarks/results/rewriter/ablation/dpo_steps.json``; resumable per policy.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "rewriter" / "ablation" / "dpo_steps.json"
N_SAMPLES = 4  # captions per prompt and policy (one batched call)
N_TRAIN_PROMPTS = 64
VARIANTS = {  # name -> (pairs used, epochs); "all pairs" is the run's own round-1 adapter
    "paper pair, 1 epoch": ("first", 1.0),
    "paper pair, 3 epochs": ("first", 3.0),
}
ALL_PAIRS = "all pairs (<= 4 a prompt), 1 epoch"


def load_run(run: Path):
    from t2i_training.config import config_from_dict
    return config_from_dict(json.loads((run / "config.json").read_text()))


def round_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "round_01" / "pairs.jsonl").read_text().splitlines()]


def cmd_train(run: Path) -> int:
    from t2i_training.dpo import train_dpo
    from t2i_training.policy import load_policy, save_adapter
    from t2i_training.rounds import dpo_pairs

    config = load_run(run)
    records = round_records(run)
    first_only = [{k: v for k, v in r.items() if k != "more"} for r in records]
    for name, (which, epochs) in VARIANTS.items():
        out = run / "ablation" / _slug(name)
        if (out / "adapter_model.safetensors").is_file():
            continue
        pairs = dpo_pairs(first_only if which == "first" else records)
        policy = load_policy(Path(config.base_model), adapter_dir=None, lora=config.lora,
                             quantization="none", device="cpu", gradient_checkpointing=False)
        settings = replace(config.dpo, epochs=epochs)
        print(f"{name}: {len(pairs)} pairs, {epochs:g} epochs", flush=True)
        metrics = train_dpo(policy, pairs, settings, run / "ablation" / "scratch", seed=0,
                            rewrite=config.rewrite)
        print(f"  {metrics}", flush=True)
        save_adapter(policy, out, metrics)
    return 0


def cmd_score(run: Path, only: str | None = None) -> int:
    from t2i_training.data import load_prompts, round_prompts, spread_subset, stable_seed
    from t2i_training.judges.shapes_judge import parse_caption
    from t2i_training.policy import load_policy, read_adapter_metrics, sample_rewrites

    config = load_run(run)
    train_set = load_prompts(config.prompts)
    used = set(round_prompts(train_set, config.prompts_per_round, config.seed, 1))
    sets = {"held-out (96)": load_prompts(config.eval_prompts),
            f"training, unused ({N_TRAIN_PROMPTS})": spread_subset(
                [p for p in train_set if p not in used], N_TRAIN_PROMPTS)}
    policies = {"base SmolLM2": None, **{n: run / "ablation" / _slug(n) for n in VARIANTS},
                ALL_PAIRS: run / "round_01" / "adapter"}
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name, adapter in policies.items():
        if name in results or (only is not None and name != only):
            continue
        if adapter is not None and not (adapter / "adapter_model.safetensors").is_file():
            print(f"{name}: not trained yet ({adapter})", flush=True)
            continue
        policy = load_policy(Path(config.base_model), adapter_dir=adapter, lora=config.lora,
                             quantization="none", device="cpu", gradient_checkpointing=False)
        start, row = time.time(), {"dpo": read_adapter_metrics(adapter) if adapter else {}}
        for label, prompts in sets.items():
            exact = names = total = 0
            captions = {}
            for prompt in prompts:
                want = parse_caption(prompt)
                texts = [r.text for r in sample_rewrites(
                    policy, prompt, N_SAMPLES, stable_seed(config.seed, "ablation", prompt),
                    temperature=config.rewrite.temperature, top_p=config.rewrite.top_p,
                    max_new_tokens=config.rewrite.max_new_tokens, rewrite=config.rewrite)]
                captions[prompt] = texts
                exact += sum(asks_exactly(t, want) for t in texts)
                names += sum(_names_all(t, want) for t in texts)
                total += len(texts)
            row[label] = {"captions": total, "exact": round(exact / total, 3),
                          "names_all": round(names / total, 3)}
            print(f"{name} | {label}: {row[label]}", flush=True)
            row[label]["samples"] = captions
        row["seconds"] = round(time.time() - start, 1)
        results = {**(json.loads(OUT.read_text()) if OUT.is_file() else {}), name: row}
        _save(results)
    return 0


def cmd_report() -> int:
    """The markdown table, each policy's exact-caption gain over the base model with a 95 %
    interval from a paired bootstrap over prompts (each prompt's N_SAMPLES captions stay
    together); also written next to the JSON as ``dpo_steps.md``."""
    from t2i_training.judges.shapes_judge import parse_caption

    results = json.loads(OUT.read_text())
    labels = [k for k in results["base SmolLM2"] if isinstance(results["base SmolLM2"][k], dict)
              and "samples" in results["base SmolLM2"][k]]
    exact = {name: {label: {p: sum(asks_exactly(t, parse_caption(p)) for t in texts) / len(texts)
                            for p, texts in row[label]["samples"].items()} for label in labels}
             for name, row in results.items()}
    lines = ["| policy | DPO pairs | optimiser steps | "
             + " | ".join(f"{label}: exact (gain, 95 % CI) | names all" for label in labels) + " |",
             "|---|---|---|" + "---|---|" * len(labels)]
    for name, row in results.items():
        cells = []
        for label in labels:
            gain = _paired_gain(exact[name][label], exact["base SmolLM2"][label])
            shown = "" if name == "base SmolLM2" else f" ({gain[0]:+.3f}, {gain[1]:+.3f} … {gain[2]:+.3f})"
            cells += [f"{row[label]['exact']:.3f}{shown}", f"{row[label]['names_all']:.3f}"]
        dpo = row.get("dpo", {})
        lines.append(f"| {name} | {dpo.get('pairs', '–')} | {dpo.get('steps', 0)} | "
                     + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    from t2i_sdk.bundle.atomic import atomic_write_text
    atomic_write_text(OUT.with_suffix(".md"), table)
    print(table, end="")
    return 0


def _paired_gain(policy: dict, base: dict, *, draws: int = 2000) -> tuple[float, float, float]:
    """Mean per-prompt gain and its 2.5 / 97.5 % bootstrap percentiles (seeded)."""
    import random
    diffs = [policy[p] - base[p] for p in base]
    rng = random.Random(0)
    means = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(draws))
    return sum(diffs) / len(diffs), means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def asks_exactly(text: str, want) -> bool:
    """``text`` is a caption asking for exactly what ``want`` asks (two objects in any order)."""
    from t2i_training.judges.shapes_judge import parse_caption
    try:
        got = parse_caption(text)
    except ValueError:
        return False
    unordered = ("two_object", "color_attr")
    key = lambda c: (c.tag, frozenset(c.include) if c.tag in unordered else c.include, c.exclude)
    return key(got) == key(want)


def _names_all(text: str, want) -> bool:
    need = {q.cls for q in want.include} | {q.color for q in want.include if q.color}
    return all(re.search(rf"\b{w}", text.lower()) for w in need)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _save(results: dict) -> None:
    from t2i_sdk.bundle.atomic import atomic_write_text
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(results, indent=2) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("train", "score", "report"))
    p.add_argument("run", type=Path, nargs="?", help="the run dir (train, score)")
    p.add_argument("--policy", help="score only this policy (to run two in parallel)")
    args = p.parse_args(argv)
    if args.command == "report":
        return cmd_report()
    if args.run is None or not (args.run / "round_01" / "pairs.jsonl").is_file():
        p.error(f"{args.command} needs a run dir whose round 1 is judged, got {args.run}")
    if args.command == "train":
        return cmd_train(args.run)
    return cmd_score(args.run, args.policy)


if __name__ == "__main__":
    sys.exit(main())
