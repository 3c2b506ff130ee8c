"""What the shapes judge preferred in each DPO round: share of sampled / chosen / rejected
rewrites that name every shape and colour the user asked for (canonical words), that are an
exact canonical caption, and their length in words.

    python benchmarks/rewriter_pairs.py runs/dpo-smollm2-v2 > benchmarks/results/rewriter/pairs.txt
"""
import json
import re
import sys

from t2i_training.judges.shapes_judge import parse_caption
run = sys.argv[1]
for r in range(1, 5):
    try:
        pairs = [json.loads(l) for l in open(f"{run}/round_0{r}/pairs.jsonl")]
        rew = [json.loads(l) for l in open(f"{run}/round_0{r}/rewrites.jsonl")]
    except FileNotFoundError:
        break
    def words_ok(text, cap):
        t = text.lower()
        need = {q.cls for q in cap.include} | {q.color for q in cap.include if q.color}
        return all(re.search(rf"\b{w}", t) for w in need)
    def canonical(text):
        t = text.lower().strip().rstrip(".")
        try:
            parse_caption(t); return True
        except ValueError:
            return False
    used = [p for p in pairs if p["skipped"] is None]
    caps = {p["prompt"]: parse_caption(p["prompt"]) for p in pairs}
    ch = [p["chosen_raw"] for p in used]; rj = [p["rejected_raw"] for p in used]
    allr = [x["raw"] for d in rew for x in d["rewrites"]]
    kw = lambda xs, ps: sum(words_ok(x, caps[p["prompt"]]) for x, p in zip(xs, ps)) / max(1, len(xs))
    samp_kw = sum(words_ok(x["raw"], caps[d["prompt"]]) for d in rew for x in d["rewrites"]) / len(allr)
    one_caption = sum(len({x["raw"] for x in d["rewrites"]}) == 1 for d in rew)
    print(f"round {r}: pairs {len(used)}/{len(pairs)} (prompts whose samples were all one caption: {one_caption}); "
          f"sampled: names every asked shape+colour {samp_kw:.2f}, "
          f"exact canonical caption {sum(map(canonical, allr))/len(allr):.2f}, mean words {sum(len(x.split()) for x in allr)/len(allr):.1f}; "
          f"chosen vs rejected: names all {kw(ch, used):.2f} vs {kw(rj, used):.2f}, "
          f"words {sum(len(x.split()) for x in ch)/len(ch):.1f} vs {sum(len(x.split()) for x in rj)/len(rj):.1f}")
