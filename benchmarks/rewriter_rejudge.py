"""What a different judge would have preferred in a finished DPO run: every round's stored
samples and renders judged again, with the shapes judge as run and with
``penalize_unrequested`` (shapes nobody asked for count against objects-present), and the
pairs each would give DPO (``pairs_per_prompt`` of the run's config).

    python benchmarks/rewriter_rejudge.py training/examples/shapes_smollm2_v5.yaml \
        > benchmarks/results/rewriter/v5/rejudge.txt

Per round and judge: DPO pairs, the share of chosen captions asking for exactly what the user
asked for, and the share of chosen (and rejected) captions naming a shape the user did not ask
for. Nothing is trained: this shows what the loop would be taught, not what it would learn.
"""
from __future__ import annotations

import json
import sys

from rewriter_deploy import shapes_named
from rewriter_dpo_ablation import asks_exactly

from t2i_training.config import load_config
from t2i_training.data import prompt_specs, stable_seed
from t2i_training.judges.shapes_judge import ShapesJudge, parse_caption
from t2i_training.rounds import _judge_prompt, _pair_record, dpo_pairs
from t2i_training.run_dir import RunDir


def names_unrequested(text: str, want) -> bool:
    return not shapes_named(text) <= {q.cls for q in want.include}


def main(config_path: str) -> int:
    config = load_config(config_path)
    specs = prompt_specs(config.prompts)
    judges = {"as run": ShapesJudge(specs=specs),
              "penalize_unrequested": ShapesJudge(specs=specs, penalize_unrequested=True)}
    run = RunDir(config.run_dir)
    if not (run.round(1).path / "renders.jsonl").is_file():
        print(f"{config.run_dir}: no rendered round 1 (run from the repository root)",
              file=sys.stderr)
        return 2
    for r in range(1, config.rounds + 1):
        rd = run.round(r)
        if not (rd.path / "renders.jsonl").is_file():
            break
        rewrites = [json.loads(line) for line in (rd.path / "rewrites.jsonl").open()]
        renders = {json.loads(line)["index"]: json.loads(line) for line in (rd.path / "renders.jsonl").open()}
        cells = []
        for name, judge in judges.items():
            records = []
            for rec in rewrites:
                table = _judge_prompt(judge, rec["prompt"], rec, renders[rec["index"]], rd,
                                      config.dimensions)
                records.append(_pair_record(rec["index"], rec["prompt"], rec["rewrites"], table,
                                            config.dimensions, tie_break=config.tie_break,
                                            seed=stable_seed(config.seed, "pair", r, rec["prompt"]),
                                            limit=config.pairs_per_prompt))
            pairs = [(p, parse_caption(p["prompt"], specs)) for p in dpo_pairs(records)]
            share = lambda test: sum(test(p, w) for p, w in pairs) / max(1, len(pairs))
            cells.append(f"{name}: {len(pairs)} pairs, chosen exact "
                         f"{share(lambda p, w: asks_exactly(p['chosen_raw'], w)):.2f}, chosen / "
                         f"rejected naming an unrequested shape "
                         f"{share(lambda p, w: names_unrequested(p['chosen_raw'], w)):.2f} / "
                         f"{share(lambda p, w: names_unrequested(p['rejected_raw'], w)):.2f}")
        print(f"round {r}: " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} RUN_CONFIG.yaml (from the repository root)")
    sys.exit(main(sys.argv[1]))
