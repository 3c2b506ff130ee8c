"""Text-only probe: how often does the base SmolLM2 rewrite a free-form TRAINING prompt into the
exact canonical caption of its spec? No renders, no DPO: it asks how many right candidates the
loop's sampling offers DPO to prefer, for the shipped chat and two variants, at 0.7 and 1.0.

    OMP_NUM_THREADS=1 python benchmarks/rewriter_prompt_probe.py [VARIANT ...] \
        > benchmarks/results/rewriter/prompt_probe.jsonl

36 training prompts (spread over the tags), 5 samples each, seed = prompt index. Held-out
prompts are not used, so the variants are not chosen on the loop's eval set.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "training" / "examples" / "shapes_smollm2.yaml"
N_PROMPTS, N_SAMPLES, TEMPERATURES = 36, 5, (0.7, 1.0)
SYSTEM_B = ("Rewrite the user's drawing request as a caption in this exact style: 'a photo of' + "
            "objects. Shapes: circle, square, triangle, star, diamond, hexagon, cross. Colors: "
            "red, orange, yellow, green, blue, purple, pink, white. Numbers: two, three, four. "
            "Relations: left of, right of, above, below. Use only these words. Answer with the "
            "caption only.")
# The shipped three examples plus three more, all in the TRAINING dialect.
EXTRA_EXAMPLES = (("just one emerald-colored five-pointed star", "a photo of a green star"),
                  ("a disc with a tile over it", "a photo of a square above a circle"),
                  ("PLEASE MAKE EXACTLY THREE LOZENGES", "a photo of three diamonds"))


def variants(shipped):
    """name -> RewriteConfig: the shipped chat, a stricter system prompt, that plus six
    few-shot examples instead of three, and the first and last decoding under the drafter's
    caption grammar."""
    from t2i_sdk.shapes.caption_grammar import caption_grammar

    six = replace(shipped, system_prompt=SYSTEM_B,
                  examples=tuple(shipped.examples) + EXTRA_EXAMPLES)
    return {"shipped": shipped,
            "sys_b": replace(shipped, system_prompt=SYSTEM_B),
            "sys_b+6ex": six,
            "shipped+grammar": replace(shipped, grammar=caption_grammar()),
            "sys_b+6ex+grammar": replace(six, grammar=caption_grammar())}


def main(argv: list[str]) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from t2i_engines.pytorch.causal_lm import CausalLMEngine
    from t2i_sdk.stages.rewrite import clean_rewrite, rewrite_messages
    from t2i_training.config import load_config
    from t2i_training.data import load_prompts, spread_subset
    from t2i_training.judges.shapes_judge import _normalize as normalize_caption
    from t2i_training.judges.shapes_judge import caption_index, parse_caption

    torch.set_num_threads(1)
    config = load_config(CONFIG)
    items = [(t, parse_caption(t)) for t in spread_subset(load_prompts(config.prompts), N_PROMPTS)]
    chats = variants(config.rewrite)
    unknown = [name for name in argv if name not in chats]
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {', '.join(chats)}", file=sys.stderr)
        return 2
    base = ROOT / config.base_model
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    engine = CausalLMEngine(model, AutoTokenizer.from_pretrained(base), "cpu")
    index = caption_index()
    for name in argv or list(chats):
        chat = chats[name]
        for temperature in TEMPERATURES:
            exact, start, first = 0, time.perf_counter(), []
            for i, (text, caption) in enumerate(items):
                raws = engine.generate(rewrite_messages(text, chat), n=N_SAMPLES, seed=i,
                                       temperature=temperature, top_p=chat.top_p,
                                       max_new_tokens=config.sampling.max_new_tokens,
                                       grammar=chat.grammar)
                exact += sum(index.get(normalize_caption(clean_rewrite(r) or "")) == caption
                             for r in raws)
                first.append((text, clean_rewrite(raws[0])))
            total = N_SAMPLES * len(items)
            print(json.dumps({"variant": name, "temperature": temperature, "exact": exact,
                              "total": total, "rate": round(exact / total, 3),
                              "s": round(time.perf_counter() - start),
                              "load": os.getloadavg()[0], "examples": first[:6]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
