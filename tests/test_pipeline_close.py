"""Pipeline.close / ``with``: models released, a closed pipeline refuses calls, and a process
holding a GGUF (llama.cpp) component exits without ``Llama.__del__`` tracebacks."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from fakes import FakeDrafter, FakeLM, FakeScorer
from t2i_sdk import InputError, PipelineClosed, T2IError
from t2i_sdk.pipeline import Pipeline
from t2i_sdk.planning import LLMPlanner
from t2i_sdk.stages.rewrite import LLMRewriter

PROMPT = "a red apple to the left of a blue cup"
KNOBS = dict(seed=0, n_drafts=1, steps=1, rounds=0)


class ClosingLM(FakeLM):
    """A chat model holding a (pretend) native resource."""

    def __init__(self, answers=("a red apple",)):
        super().__init__(list(answers))
        self.closes = 0

    def close(self):
        self.closes += 1


class ClosingDrafter(FakeDrafter):
    def __init__(self):
        super().__init__()
        self.closes = 0

    def close(self):
        self.closes += 1


def _pipe(lm=None, planner_lm=None, drafter=None):
    return Pipeline(drafter or FakeDrafter(), FakeScorer(),
                    llm_rewriter=LLMRewriter(lm) if lm else None,
                    llm_planner=LLMPlanner(planner_lm) if planner_lm else None)


# --- fakes: what close does ------------------------------------------------------------------

def test_close_closes_each_model_once_and_is_idempotent():
    rewriter_lm, planner_lm, drafter = ClosingLM(), ClosingLM(), ClosingDrafter()
    pipe = _pipe(rewriter_lm, planner_lm, drafter)
    assert pipe(PROMPT, **KNOBS).image is not None and not pipe.closed
    pipe.close()
    pipe.close()
    assert pipe.closed
    assert (rewriter_lm.closes, planner_lm.closes, drafter.closes) == (1, 1, 1)


def test_a_model_shared_by_rewriter_and_planner_is_closed_once():
    lm = ClosingLM()
    _pipe(lm, lm).close()
    assert lm.closes == 1


def test_calling_a_closed_pipeline_is_a_clear_error():
    pipe = _pipe(ClosingLM())
    pipe.close()
    with pytest.raises(PipelineClosed, match="closed") as info:
        pipe(PROMPT, **KNOBS)
    assert isinstance(info.value, InputError) and isinstance(info.value, T2IError)
    with pytest.raises(PipelineClosed):
        pipe.drafter.draft(PROMPT, None, [0], 1)  # the stages are gone too
    assert pipe.refiner is None  # a stage it never had stays None
    assert "closed" in repr(pipe.drafter)


def test_with_closes_on_leaving_the_block_even_on_error():
    lm = ClosingLM()
    with _pipe(lm) as pipe:
        assert pipe(PROMPT, **KNOBS).image is not None
    assert pipe.closed and lm.closes == 1
    lm2 = ClosingLM()
    with pytest.raises(RuntimeError, match="boom"):
        with _pipe(lm2) as pipe2:
            raise RuntimeError("boom")
    assert pipe2.closed and lm2.closes == 1


def test_every_model_is_closed_even_when_one_close_fails():
    class Failing(ClosingLM):
        def close(self):
            super().close()
            raise OSError("disk gone")

    bad, good = Failing(), ClosingLM()
    pipe = _pipe(bad, good)
    with pytest.raises(OSError, match="disk gone"):
        pipe.close()
    assert bad.closes == good.closes == 1 and pipe.closed
    pipe.close()  # already closed: nothing is tried again
    assert bad.closes == 1


def test_close_waits_for_a_model_call_in_progress():
    started, release = threading.Event(), threading.Event()
    lm = ClosingLM()

    class SlowDrafter(FakeDrafter):
        def draft(self, *args, **kwargs):
            started.set()
            release.wait(10)
            assert lm.closes == 0  # not closed under a running call
            return super().draft(*args, **kwargs)

    pipe = _pipe(lm, drafter=SlowDrafter())
    results = []
    worker = threading.Thread(target=lambda: results.append(pipe(PROMPT, rewriter="identity",
                                                                 **KNOBS)))
    worker.start()
    assert started.wait(10)
    closer = threading.Thread(target=pipe.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # blocked on the model lock
    release.set()
    worker.join(10)
    closer.join(10)
    assert lm.closes == 1 and pipe.closed


# --- a real bundle with GGUF (llama.cpp) rewriter and planner -----------------------------------

@pytest.fixture(scope="module")
def gguf_bundle(tiny_bundle, tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the `llama` extra)")
    pytest.importorskip("gguf", reason="the gguf package (the `llama` extra) is not installed")
    from t2i_export.cli import main

    out = tmp_path_factory.mktemp("close") / "tiny-gguf"
    # --engines torch keeps the diffusion/CLIP components: only the LLMs become GGUF files.
    assert main(["--quiet", "bundle", str(tiny_bundle), str(out), "--engines", "torch",
                 "--llm", "gguf:q8_0"]) == 0
    return out


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=600, env=env)


def test_exit_without_close_prints_no_traceback(gguf_bundle):
    proc = _run(f"""
        from t2i_sdk import Pipeline
        pipe = Pipeline.from_pretrained({str(gguf_bundle)!r}, device="cpu", calibrate=False)
        engines = [pipe.rewriters["llm"].lm, pipe.planners["llm"].lm]
        assert type(engines[0]).__name__ == "LlamaCppEngine", engines
        print("rewrites", pipe.rewriters["llm"].rewrite("a red cat", 1, 0))
        """)  # and exits with both llama.cpp models still open
    assert proc.returncode == 0, proc.stderr
    assert "rewrites" in proc.stdout
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # (b): the tiny model was trained with 1024 positions; the context is not opened past it
    assert "n_ctx_train" not in proc.stderr, proc.stderr


def test_with_block_closes_the_llama_cpp_engines(gguf_bundle):
    proc = _run(f"""
        from t2i_sdk import Pipeline, PipelineClosed
        with Pipeline.from_pretrained({str(gguf_bundle)!r}, device="cpu", calibrate=False) as pipe:
            engines = [pipe.rewriters["llm"].lm, pipe.planners["llm"].lm]
            pipe("two red circles", seed=0, n_rewrites=1, n_drafts=1, steps=1, rounds=0,
                 rewriter="llm", planner="llm")
            assert not any(e.closed for e in engines)
        assert pipe.closed and all(e.closed for e in engines), engines
        # llama.cpp's model and context were freed
        assert all(e.llm._model.model is None and e.llm._ctx.ctx is None for e in engines)
        try:
            pipe("two red circles", seed=0)
        except PipelineClosed as exc:
            print("refused:", exc)
        else:
            raise AssertionError("a closed pipeline generated")
        pipe.close()  # idempotent
        """)
    assert proc.returncode == 0, proc.stderr
    assert "refused: this Pipeline is closed" in proc.stdout
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
