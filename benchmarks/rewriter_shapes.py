"""Input-side scaling in the shapes world (arXiv 2510.12041): does DPO teach a real LLM to
rewrite free-form user requests into prompts the shapes drafter gets right?

    make smollm2                                                 # the pinned real model
    OMP_NUM_THREADS=1 t2i-train dpo --config training/examples/shapes_smollm2.yaml --no-export
    OMP_NUM_THREADS=1 python benchmarks/rewriter_shapes.py accuracy [--wait]
    OMP_NUM_THREADS=1 python benchmarks/rewriter_shapes.py deploy
    python benchmarks/rewriter_shapes.py report
    python benchmarks/rewriter_shapes.py checks --out DIR   # checks.txt from DIR/accuracy.json

``accuracy``: GenEval accuracy on the run's held-out free-form prompts (the loop's eval set:
phrasings and synonyms never seen in training) for the identity rewriter, the base SmolLM2
rewriter and the DPO rewriter after every finished round, at 1 draft with n_rewrites = 1 and
3, through the deployed pipeline (the bundle's drafter, rule layout from
``rewrite.layout_from``, ranking against the user's prompt). ``--wait`` evaluates rounds as the
training run finishes them. Resumable: finished contestants are kept in the JSON.
``deploy``: merge the last adapter, convert to GGUF (q8_0, q4_k), run the llama.cpp rewriter
inside the Pipeline: accuracy against the transformers rewriter (greedy, so the two decode
the same way up to quantisation) and at the deployed temperature, and ms per rewrite call.
``report``: the round table (pairs, win rates, accuracy) as markdown and a plot.
Everything lands in benchmarks/results/rewriter/.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "training" / "examples" / "shapes_smollm2.yaml"
OUT = ROOT / "benchmarks" / "results" / "rewriter"
IMAGE_SEED = 0  # image seed of prompt i: IMAGE_SEED + i * SEED_STRIDE, as `t2i eval`
N_REWRITES = (1, 3)


def held_out_items(config, n: int | None = None) -> list[tuple[str, object]]:
    """The loop's held-out prompts with their specs: (typed text, Caption); ``n`` of them spread
    over the set (None: the loop's own ``max_eval_prompts``)."""
    from t2i_training.data import load_prompts, spread_subset
    from t2i_training.judges.shapes_judge import parse_caption

    prompts = spread_subset(load_prompts(config.eval_prompts), n or config.max_eval_prompts)
    return [(p, parse_caption(p)) for p in prompts]


def load_pipeline(config):
    from t2i_sdk import Pipeline

    pipe = Pipeline.from_pretrained(ROOT / config.bundle, device="cpu", calibrate=False)
    pipe.config = replace(pipe.config, rewrite=config.rewrite)
    return pipe


def score(pipe, items, *, rewriter: str, n_rewrites: int, label: str) -> dict:
    """Accuracy of ``pipe`` on ``items`` (1 draft per rewrite, no refinement)."""
    from rich.progress import track
    from t2i_sdk.cli.eval_cmd import SEED_STRIDE
    from t2i_sdk.shapes.detect import detect
    from t2i_sdk.shapes.geneval import Verdict, evaluate, summarize

    records, rewrite_ms = [], []
    for i, (text, caption) in enumerate(track(items, description=f"{label:>18}", transient=True)):
        result = pipe(text, seed=IMAGE_SEED + i * SEED_STRIDE, n_drafts=1, rounds=0,
                      n_rewrites=n_rewrites, rewriter=rewriter, planner="rule")
        verdict = evaluate(caption, detect(result.image), result.image.size)
        records.append({"prompt": text, "caption": caption.prompt, "tag": caption.tag,
                        "correct": verdict.correct, "rewrites": result.rewrites})
        if "rewrite" in result.timings:
            rewrite_ms.append(result.timings["rewrite"])
    summary = summarize(Verdict(r["tag"], r["prompt"], r["correct"]) for r in records).to_dict()
    out = {"overall": summary["overall"],
           "per_category": {t: e["score"] for t, e in summary["per_category"].items()},
           "records": records}
    if rewrite_ms:
        out["rewrite_ms_mean"] = round(sum(rewrite_ms) / len(rewrite_ms), 1)
    return out


class AdapterRewriter:
    """The base model with every round's LoRA loaded by name; ``use(name)`` switches
    (None: the bare base model). Wraps a transformers ChatLM for the SDK's LLMRewriter."""

    def __init__(self, base_model: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from t2i_engines.pytorch.causal_lm import CausalLMEngine

        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32,
                                                     use_safetensors=True)
        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        self.model, self.loaded, self.active = model, set(), None
        self.engine = CausalLMEngine(model, self.tokenizer, "cpu")

    def use(self, name: str | None, adapter_dir: Path | None = None) -> None:
        from peft import PeftModel

        if name is not None and name not in self.loaded:
            if not self.loaded:
                self.model = PeftModel.from_pretrained(self.model, str(adapter_dir),
                                                       adapter_name=name)
                self.engine.model = self.model
            else:
                self.model.load_adapter(str(adapter_dir), adapter_name=name)
            self.loaded.add(name)
        self.active = name

    def generate(self, messages, n, seed, **kwargs):
        if self.active is None and self.loaded:
            with self.model.disable_adapter():
                return self.engine.generate(messages, n, seed, **kwargs)
        if self.active is not None:
            self.model.set_adapter(self.active)
        return self.engine.generate(messages, n, seed, **kwargs)


def cmd_accuracy(args) -> int:
    from t2i_sdk.stages.rewrite import LLMRewriter
    from t2i_training.config import load_config
    from t2i_training.run_dir import RunDir

    config = load_config(args.config)
    items = held_out_items(config, args.prompts)
    path = Path(args.out) / "accuracy.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("meta", {"config": str(Path(args.config).resolve().relative_to(ROOT)),
                                "prompts": len(items), "image_seed": IMAGE_SEED,
                                "machine": _machine()})
    pipe = load_pipeline(config)
    llm = AdapterRewriter(ROOT / config.base_model)
    pipe.rewriters["llm"] = LLMRewriter(llm, config.rewrite)
    run = RunDir(ROOT / config.run_dir)

    def contestant(name: str, adapter: Path | None, n_values=tuple(args.n_rewrites),
                   suffix="") -> None:
        mode = "identity" if name == "identity" else "llm"
        if mode == "llm":
            llm.use(None if name == "base" else name, adapter)
        for n in (1,) if mode == "identity" else n_values:
            key = f"{name}@n{n}{suffix}"
            if key in results:
                continue
            start = time.perf_counter()
            results[key] = score(pipe, items, rewriter=mode, n_rewrites=n, label=key)
            results[key]["seconds"] = round(time.perf_counter() - start, 1)
            _save(path, results)
            print(f"{key}: {results[key]['overall']:.3f}", flush=True)

    contestant("identity", None)
    contestant("base", None)
    if args.last_round_only:
        contestant(f"round_{config.rounds}", run.adapter_after(config.rounds))
        return 0
    for r in range(1, config.rounds + 1):
        while args.wait and not (run.round(r).path / "report.json").is_file():
            time.sleep(30)
        if (run.round(r).path / "report.json").is_file():
            contestant(f"round_{r}", run.adapter_after(r))
    # Ablation: the same rewrites, the layout planned from the user's words instead.
    other = "prompt" if config.rewrite.layout_from == "rewrite" else "rewrite"
    pipe.config = replace(pipe.config, rewrite=replace(config.rewrite, layout_from=other))
    last = max((r for r in range(1, config.rounds + 1)
                if (run.round(r).path / "report.json").is_file()), default=None)
    contestant("base", None, (1,), f"|layout_from={other}")
    if last is not None:
        contestant(f"round_{last}", run.adapter_after(last), (1,), f"|layout_from={other}")
    return 0


def _machine() -> dict:
    import os
    return {"cpu": platform.processor() or platform.machine(), "threads": 1,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def _save(path: Path, data: dict) -> None:
    from t2i_sdk.bundle.atomic import atomic_write_text
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--config", default=str(CONFIG))
    a.add_argument("--out", default=str(OUT), help="results folder")
    a.add_argument("--wait", action="store_true", help="wait for rounds still training")
    a.add_argument("--prompts", type=int, default=None,
                   help="held-out prompts to score (default: the run's max_eval_prompts)")
    a.add_argument("--n-rewrites", type=int, nargs="+", default=list(N_REWRITES),
                   help="n_rewrites values to score (default: 1 3)")
    a.add_argument("--last-round-only", action="store_true",
                   help="identity, base and the run's last round only (no layout ablation)")
    a.set_defaults(run=cmd_accuracy)
    d = sub.add_parser("deploy")
    d.add_argument("--config", default=str(CONFIG))
    d.add_argument("--out", default=str(OUT), help="results folder")
    d.set_defaults(run=lambda args: _deploy().cmd_deploy(args))
    r = sub.add_parser("report")
    r.add_argument("--config", default=str(CONFIG))
    r.add_argument("--out", default=str(OUT), help="results folder")
    r.set_defaults(run=lambda args: _deploy().cmd_report(args))
    c = sub.add_parser("checks", help="checks.txt from an accuracy.json alone (e.g. an old run's)")
    c.add_argument("--out", default=str(OUT), help="results folder holding accuracy.json")
    c.set_defaults(run=lambda args: _deploy().write_checks(Path(args.out)))
    args = p.parse_args(argv)
    return args.run(args)


def _deploy():
    sys.path.insert(0, str(Path(__file__).parent))
    import rewriter_deploy
    return rewriter_deploy


if __name__ == "__main__":
    sys.exit(main())
