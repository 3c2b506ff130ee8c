"""A toy rewriting task with a known preference, for the learning test and the benchmark.

A random tiny LLM emits byte soup that no judge can rank, so the base model is first
pre-trained briefly (plain LM on chat transcripts of rewrites) to answer like a lazy rewriter:
mostly the prompt's object as-is, sometimes with a color, sometimes the wrong object. The judge
``keeps_objects_adds_color`` then prefers colored rewrites that keep the object, and DPO has
something to learn. This sets up the base model; it is not SFT of the rewriter.
"""
from __future__ import annotations

import random
from pathlib import Path

OBJECTS = ("cat", "dog", "horse", "bird", "car", "bicycle", "apple", "banana", "cup", "chair",
           "book", "clock", "vase", "lamp", "tree", "flower", "boat", "train", "umbrella",
           "bench", "giraffe", "elephant", "laptop", "bottle")
COLORS = ("red", "green", "blue", "yellow", "white", "black", "pink", "brown")
TEMPLATES = ("a photo of a {}", "a {}", "a picture of a {}")


def toy_prompts() -> list[str]:
    """72 one-object prompts."""
    return [t.format(o) for t in TEMPLATES for o in OBJECTS]


def base_rewrite(rng: random.Random, obj: str) -> str:
    """The base model's habits: mostly plain, sometimes a color, sometimes the wrong object."""
    u = rng.random()
    if u < 0.55:
        return rng.choice([f"a {obj}", f"a photo of a {obj}", f"a {obj} on a table"])
    if u < 0.85:
        c = rng.choice(COLORS)
        return rng.choice([f"a {c} {obj}", f"a {c} {obj} on a table"])
    return rng.choice([f"a photo of a {rng.choice(OBJECTS)}", "a photo"])


def build_toy_rewriter(out_dir: str | Path, *, steps: int = 400, batch: int = 16,
                       lr: float = 1e-2, seed: int = 0) -> Path:
    """A tiny Llama (``build_tiny_llama``) pre-trained for ``steps`` AdamW steps on
    ``batch`` transcripts each, loss on the answer tokens only. ~15 s on a CPU core."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama

    from t2i_sdk.stages.rewrite import rewrite_messages as chat_messages

    path = build_tiny_llama(out_dir, seed=seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            ids, labels = zip(*(_transcript(tok, rng, chat_messages) for _ in range(batch)))
            width = max(map(len, ids))
            x = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])
            y = torch.tensor([[-100] * (width - len(lab)) + lab for lab in labels])
            loss = model(input_ids=x, attention_mask=(x != tok.pad_token_id).long(),
                         labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.save_pretrained(path, safe_serialization=True)
    return path


def _transcript(tok, rng: random.Random, chat_messages) -> tuple[list[int], list[int]]:
    """Token ids of one chat transcript and its labels (−100 outside the answer)."""
    obj = rng.choice(OBJECTS)
    msgs = chat_messages(rng.choice(TEMPLATES).format(obj))
    head = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(
        msgs + [{"role": "assistant", "content": base_rewrite(rng, obj)}], tokenize=False)
    h = tok(head, add_special_tokens=False)["input_ids"]
    f = tok(full, add_special_tokens=False)["input_ids"]
    return f, [-100] * len(h) + f[len(h):]
