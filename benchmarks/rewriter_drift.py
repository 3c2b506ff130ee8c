"""What the DPO rounds changed in the held-out rewrites, read from the loop's own eval logs.

    python benchmarks/rewriter_drift.py runs/dpo-smollm2-v2 > benchmarks/results/rewriter/drift.txt

For the base model (round 1's "previous") and each round's policy, over the held-out free-form
prompts (one rewrite each, the deployed sampling): how often a rewrite adds a shape, colour or
relation word the user neither typed nor asked for by a synonym (an invented object or
relation), how often it keeps the request's chatter ("could you", "please", "thanks"), how often it still names a shape or colour
by a synonym the drafter cannot read ("rhombus", "plus symbol"), and the mean length in words.
Then, per round, where the judge's win rate against the user's prompt comes from.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from t2i_sdk.shapes.freeform import COLOR_SYNONYMS, RELATION_PHRASES, SHAPE_SYNONYMS

CANONICAL = ({w for w in SHAPE_SYNONYMS["train"]} | {w for w in COLOR_SYNONYMS["train"]}
             | {"left", "right", "above", "below"})
# Every synonym phrase of either dialect, as typed ("plus symbol", "six-sided shape", "rhombus").
FOREIGN = tuple(phrase for table in (SHAPE_SYNONYMS, COLOR_SYNONYMS) for split in table.values()
                for phrases in split.values() for phrase in phrases)
CHATTER = ("could you", "please", "pls", "thanks", "i'd like", "would love", "can you", "make me",
           "create a", "need an", "show me", "draw", "render", "generate")


def translations(text: str) -> set[str]:
    """The canonical words a prompt asks for through a synonym ("rhombus" -> "diamond")."""
    low = text.lower()
    return {canonical for table in (SHAPE_SYNONYMS, COLOR_SYNONYMS, RELATION_PHRASES)
            for split in table.values() for canonical, phrases in split.items()
            if any(phrase in low for phrase in phrases) for canonical in canonical.split()}


def uses_synonym(text: str) -> bool:
    """Whether ``text`` names a shape or colour by a dialect synonym, whole words only."""
    low = " ".join(re.findall(r"[a-z]+", text.lower()))
    return any(re.search(rf"\b{' '.join(re.findall(r'[a-z]+', p))}s?\b", low) for p in FOREIGN)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower().replace("-", " ")))


def stats(records: list[tuple[str, str]]) -> dict:
    n = len(records)
    invented = sum(bool((words(r) & CANONICAL) - words(p) - translations(p)) for p, r in records)
    return {"rewrites": n,
            "invents a shape/colour/relation": round(invented / n, 2),
            "keeps request chatter": round(sum(any(c in r.lower() for c in CHATTER)
                                               for _, r in records) / n, 2),
            "keeps a synonym the drafter never saw": round(sum(uses_synonym(r)
                                                               for _, r in records) / n, 2),
            "mean words": round(sum(len(r.split()) for _, r in records) / n, 1)}


def main(run: str) -> int:
    rounds = sorted(Path(run).glob("round_*/eval.jsonl"))
    if not rounds:
        print(f"{run}: no round_*/eval.jsonl", file=sys.stderr)
        return 2
    logs = [[json.loads(line) for line in path.read_text().splitlines()] for path in rounds]
    rows = [("base SmolLM2", [(e["prompt"], e["texts"]["previous"]) for e in logs[0]])]
    rows += [(f"round {i}", [(e["prompt"], e["texts"]["current"]) for e in log])
             for i, log in enumerate(logs, start=1)]
    for name, records in rows:
        print(name + ": " + ", ".join(f"{k} {v}" for k, v in stats(records).items()))
    for i, log in enumerate(logs, start=1):
        print(f"round {i} vs the user's prompt: " + vote_tally(log))
    return 0


def vote_tally(log: list[dict]) -> str:
    """Where the judge's win rate comes from: prompts the rewrite's image won, lost or tied
    (votes summed over dimensions and both orders), and per dimension the prompts it tied."""
    sums = [sum(sum(v) for v in e["votes"]["vs_original"].values()) for e in log]
    dims = log[0]["votes"]["vs_original"]
    ties = {d: sum(not any(e["votes"]["vs_original"][d]) for e in log) for d in dims}
    return (f"won {sum(x > 0 for x in sums)}, lost {sum(x < 0 for x in sums)}, tied "
            f"{sum(x == 0 for x in sums)} of {len(log)}; ties per dimension "
            + ", ".join(f"{d} {n}" for d, n in ties.items()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
