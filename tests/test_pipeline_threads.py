"""One Pipeline called from 8 threads gives the images, scores and winners of single-threaded
calls with the same arguments (real diffusers/transformers engines of the tiny bundle)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

PROMPTS = ["two red apples to the left of a blue cup", "a green ball above a yellow box",
           "a black cat next to a white dog", "three blue stars"]


def _fingerprint(result):
    return (result.winner, result.rewrites,
            [(c.seed, c.round, c.parent, round(c.score.total, 6)) for c in result.candidates],
            [np.asarray(c.image).tobytes() for c in result.candidates])


def test_eight_threads_match_single_threaded_calls(tiny_pipeline):
    calls = [dict(prompt=PROMPTS[i % 4], seed=i // 2, n_rewrites=2 if i % 2 else 1,
                  rewriter="llm" if i % 2 else "identity", planner="rule",
                  n_drafts=3, steps=3, top_k=2, rounds=1) for i in range(8)]

    def run(kw):
        kw = dict(kw)
        return _fingerprint(tiny_pipeline(kw.pop("prompt"), **kw))

    expected = [run(kw) for kw in calls]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(run, calls * 2))  # 16 calls, each twice in flight
    for i, fp in enumerate(got):
        assert fp == expected[i % 8], f"call {i % 8} differs when run from threads"
