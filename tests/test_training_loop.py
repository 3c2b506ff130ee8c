"""t2i-train's iterative DPO loop on CPU with tiny models: one full round with the tiny bundle,
resume after a kill, the CLI with export, and a learning test (DPO on a known preference)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from t2i_sdk.errors import InputError  # noqa: E402
from t2i_training.config import RunConfig, config_from_dict, load_config  # noqa: E402
from t2i_training.data import load_prompts, split_prompts  # noqa: E402
from t2i_training.judges.programmatic import (ProgrammaticJudge,  # noqa: E402
                                              keeps_objects_adds_color)
from t2i_training.preferences import VoteTable  # noqa: E402
from t2i_training.rounds import BlankRenderer, train  # noqa: E402
from t2i_training.run_dir import RunDir  # noqa: E402

PROMPTS = ["a photo of a cat", "a dog and a car", "two apples", "a red chair on a table",
           "a photo of a bird", "a clock above a bench"]


def longer_is_better(prompt, sample) -> float:
    """A programmatic preference that random tiny LLM text still separates."""
    return float(len(sample.text))


def tiny_config(tmp_path, bundle, **over) -> RunConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    data = {"bundle": str(bundle), "prompts": str(tmp_path / "prompts.txt"),
            "run_dir": str(tmp_path / "run"), "rounds": 1, "held_out_fraction": 0.34,
            "render_steps": 2, "quantization": "none", "device": "cpu",
            "dimensions": ["general_alignment", "quality"], "lora": {"r": 4, "alpha": 8},
            "dpo": {"batch_size": 4, "micro_batch_size": 2, "learning_rate": 1e-3,
                    "gradient_checkpointing": False},
            "sampling": {"n_rewrites": 3, "max_new_tokens": 10}}
    for key, value in over.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return config_from_dict(data)


# -- config and data ------------------------------------------------------------------------

def test_defaults_follow_the_paper():
    c = RunConfig(bundle="b")
    assert (c.dpo.beta, c.dpo.learning_rate, c.dpo.batch_size) == (0.1, 5e-6, 256)
    assert (c.lora.r, c.lora.alpha, c.lora.dropout) == (64, 128, 0.05)
    assert {"q_proj", "v_proj", "down_proj"} <= set(c.lora.target_modules)
    assert (c.sampling.n_rewrites, c.sampling.temperature, c.rounds) == (5, 1.5, 6)
    assert c.pairs_per_prompt == 1  # the paper: one (best, worst) pair per prompt


def test_yaml_errors_name_the_bad_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("bundle: b\ndpo:\n  bta: 0.2\n")
    with pytest.raises(InputError, match=r"dpo\.bta|'bta'"):
        load_config(path)
    path.write_text("bundle: b\nsampling:\n  temperature: hot\n")
    with pytest.raises(InputError, match=r"sampling\.temperature"):
        load_config(path)
    path.write_text("bundle: b\ntie_break: longest\n")
    with pytest.raises(InputError, match="tie_break"):
        load_config(path)
    path.write_text("bundle: b\npairs_per_prompt: 0\n")
    with pytest.raises(InputError, match="pairs_per_prompt"):
        load_config(path)
    path.write_text("bundle: b\nquantization: int3\n")
    with pytest.raises(InputError, match="quantization"):
        load_config(path)
    path.write_text("bundle: b\ndpo:\n  learning_rate: 5e-6\nlora: {r: 8}\n")
    c = load_config(path)
    assert c.dpo.learning_rate == 5e-6 and c.lora.r == 8 and c.lora.alpha == 128


def test_prompts_load_and_split_deterministically(tmp_path):
    builtin = load_prompts("builtin:compositional")
    assert 180 <= len(builtin) <= 220 and len(set(builtin)) == len(builtin)
    train_a, held_a = split_prompts(builtin, 0.1, seed=0)
    train_b, held_b = split_prompts(list(reversed(builtin)), 0.1, seed=0)
    assert set(held_a) == set(held_b) and len(held_a) == 20 and not set(held_a) & set(train_a)
    (tmp_path / "p.jsonl").write_text('{"prompt": "a cat"}\n"a dog"\n\n{"prompt": "a cat"}\n')
    assert load_prompts(tmp_path / "p.jsonl") == ["a cat", "a dog"]
    (tmp_path / "bad.jsonl").write_text('{"text": "a cat"}\n')
    with pytest.raises(InputError, match="bad.jsonl:1"):
        load_prompts(tmp_path / "bad.jsonl")


# -- one full round with the tiny bundle ----------------------------------------------------

def test_one_round_end_to_end(tmp_path, tiny_bundle):
    config = tiny_config(tmp_path, tiny_bundle)
    [report] = train(config, judge=ProgrammaticJudge(longer_is_better))
    rd = RunDir(config.run_dir).round(1)
    rewrites = [json.loads(line) for line in (rd.path / "rewrites.jsonl").read_text().splitlines()]
    votes = [json.loads(line) for line in (rd.path / "votes.jsonl").read_text().splitlines()]
    n_train = len(rewrites)
    assert n_train == 4 and report["prompts"] == 4 and report["eval_prompts"] == 2
    for rec in votes:  # every ordered pair on every dimension
        table = VoteTable.from_dict(rec["table"])
        assert {len(v) for v in table.votes.values()} == {3 * 2} and len(table.votes) == 2
    renders = [json.loads(line) for line in (rd.path / "renders.jsonl").read_text().splitlines()]
    names = {name for rec in renders for name in rec["images"]}
    assert names and all((rd.path / "images" / name).is_file() for name in names)
    assert report["pairs"] >= 1 and report["dpo"]["steps"] >= 1
    assert rd.has_adapter() and report["win_rate"]["vs_original"]["mean"] is not None
    assert set(report["timings_s"]) == {"sample", "render", "judge", "dpo", "eval"}
    # the update moved the LoRA off its zero init (B starts at 0)
    from safetensors.torch import load_file
    weights = load_file(rd.adapter_dir / "adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in weights.items())


def test_several_pairs_per_prompt_have_distinct_texts_and_feed_dpo():
    from t2i_training.judges.protocol import Verdict
    from t2i_training.rounds import _pair_record, dpo_pairs

    texts = ["a red star", "a red star", "a blue star", "two stars", "a cat"]
    rewrites = [{"raw": t, "text": t, "n_tokens": len(t.split())} for t in texts]
    table = VoteTable(5)
    for a, b in [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4)]:  # 0 and 1 beat 2, 3 and 4
        table.add("quality", a, b, Verdict(1))
    one = _pair_record(0, "p", rewrites, table, ["quality"], seed=3)
    assert "more" not in one and one["chosen_raw"] == "a red star"
    many = _pair_record(0, "p", rewrites, table, ["quality"], seed=3, limit=10)
    assert {k: many[k] for k in one} == one  # the paper's pair stays first
    got = [(p["chosen_raw"], p["rejected_raw"]) for p in dpo_pairs([many])]
    # best "a red star" (twice, same text) x worst three texts: three distinct pairs, not six
    assert sorted(got) == [("a red star", w) for w in ("a blue star", "a cat", "two stars")]
    assert all(p["prompt"] == "p" for p in dpo_pairs([many]))
    two = _pair_record(0, "p", rewrites, table, ["quality"], seed=3, limit=2)
    assert len(dpo_pairs([two])) == 2
    assert dpo_pairs([{**two, "skipped": "tie"}]) == []


# -- resume after a kill ---------------------------------------------------------------------

class Killed(Exception):
    pass


class CountingJudge:
    def __init__(self, kill_after: int | None = None):
        self.inner, self.calls, self.kill_after = ProgrammaticJudge(longer_is_better), [], kill_after

    def compare(self, prompt, a, b, dimension):
        if self.kill_after is not None and len(self.calls) == self.kill_after:
            raise Killed()
        self.calls.append((prompt, a.text, b.text, dimension))
        return self.inner.compare(prompt, a, b, dimension)


class CountingRenderer(BlankRenderer):
    def __init__(self):
        self.calls = []

    def render(self, prompt, text, seed):
        self.calls.append((text, seed))
        return super().render(prompt, text, seed)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resume_after_kill_redoes_nothing(tmp_path, tiny_bundle, monkeypatch):
    import t2i_training.rounds as rounds

    sampled = []
    real_sample = rounds.sample_rewrites
    monkeypatch.setattr(rounds, "sample_rewrites",
                        lambda *a, **k: sampled.append(a[1]) or real_sample(*a, **k))
    over = {"held_out_fraction": 0.0}
    per_prompt = 3 * 2 * 2  # n(n−1) ordered pairs × 2 dimensions
    ref_cfg = tiny_config(tmp_path / "ref", tiny_bundle, **over)
    ref_judge, ref_render = CountingJudge(), CountingRenderer()
    train(ref_cfg, judge=ref_judge, renderer=ref_render)

    cfg = tiny_config(tmp_path / "killed", tiny_bundle, **over)
    sampled.clear()
    first_judge, first_render = CountingJudge(kill_after=2 * per_prompt), CountingRenderer()
    with pytest.raises(Killed):
        train(cfg, judge=first_judge, renderer=first_render)
    rd = RunDir(cfg.run_dir).round(1)
    assert len(_lines(rd.path / "votes.jsonl")) == 2 and not rd.has_adapter()
    with open(rd.path / "votes.jsonl", "a") as f:  # a line torn by the kill
        f.write('{"index": 2, "prompt": "a photo')
    first_sampled = len(sampled)

    second_judge, second_render = CountingJudge(), CountingRenderer()
    [report] = train(cfg, judge=second_judge, renderer=second_render)
    assert len(sampled) == first_sampled == len(PROMPTS)  # nothing re-sampled
    assert second_render.calls == []  # every render was already on disk
    assert len(first_judge.calls) + len(second_judge.calls) == len(ref_judge.calls)
    assert not set(first_judge.calls) & set(second_judge.calls)
    ref_rd = RunDir(ref_cfg.run_dir).round(1)
    for name in ("votes", "pairs", "rewrites"):
        got = sorted(_lines(rd.path / f"{name}.jsonl"), key=lambda r: r["index"])
        want = sorted(_lines(ref_rd.path / f"{name}.jsonl"), key=lambda r: r["index"])
        assert got == want, name
    assert rd.has_adapter() and report["pairs"] == RunDir(ref_cfg.run_dir).round(1).read_report()["pairs"]
    # a finished round is read back, not redone
    again = CountingJudge()
    train(cfg, judge=again, renderer=CountingRenderer())
    assert again.calls == []


def test_resume_refuses_changed_settings(tmp_path, tiny_bundle):
    cfg = tiny_config(tmp_path, tiny_bundle, held_out_fraction=0.0)
    RunDir(cfg.run_dir).open(cfg)
    changed = tiny_config(tmp_path, tiny_bundle, held_out_fraction=0.0, dpo={"beta": 0.5})
    with pytest.raises(InputError, match="dpo"):
        RunDir(changed.run_dir).open(changed)


def test_resume_of_a_run_saved_before_a_setting_existed(tmp_path, tiny_bundle):
    # A run dir written before `tie_break` existed resumes with the default, not with "shorter".
    cfg = tiny_config(tmp_path, tiny_bundle, held_out_fraction=0.0)
    saved = RunDir(cfg.run_dir).open(cfg).root / "config.json"
    old = json.loads(saved.read_text())
    del old["tie_break"]
    saved.write_text(json.dumps(old))
    RunDir(cfg.run_dir).open(cfg)
    saved.write_text(json.dumps(old))
    shorter = tiny_config(tmp_path, tiny_bundle, held_out_fraction=0.0, tie_break="shorter")
    with pytest.raises(InputError, match="tie_break"):
        RunDir(shorter.run_dir).open(shorter)


# -- the CLI, QLoRA where it runs, merge + GGUF + bundle --------------------------------------

def test_cli_dpo_exports_a_bundle_and_rejects_bad_input(tmp_path, tiny_bundle, capsys):
    from t2i_sdk.bundle import load_bundle
    from t2i_training.cli import main

    (tmp_path / "p.txt").write_text("\n".join(PROMPTS[:4]) + "\n")
    (tmp_path / "run.yaml").write_text(
        f"bundle: {tiny_bundle}\nprompts: {tmp_path / 'p.txt'}\nrun_dir: {tmp_path / 'run'}\n"
        "rounds: 1\nrender: false\nheld_out_fraction: 0.25\nquantization: auto\ndevice: cpu\n"
        "lora: {r: 4, alpha: 8}\ndpo: {batch_size: 2, micro_batch_size: 2, "
        "gradient_checkpointing: false}\nsampling: {n_rewrites: 2, max_new_tokens: 8}\n"
        "judge: {kind: programmatic, prefer: keeps_objects_adds_color}\n")
    assert main(["-q", "dpo", "--config", str(tmp_path / "run.yaml")]) == 0
    out = capsys.readouterr().out
    assert "iterative DPO" in out and "bundle:" in out
    manifest = load_bundle(tmp_path / "run" / "final" / "bundle")  # hashes verified
    assert "rewriter" in manifest.components and "drafter" in manifest.components
    assert (tmp_path / "run" / "final" / "rewriter" / "model.safetensors").is_file()

    (tmp_path / "bad.yaml").write_text(f"bundle: {tiny_bundle}\nrounds: 1\nbogus: 3\n")
    assert main(["dpo", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bogus" in err
    assert main(["eval", "--adapter", str(tmp_path), "--prompts", str(tmp_path / "p.txt")]) == 2


def test_rewriter_bundle_rebuilds_the_shipped_rewriter_from_base_plus_adapter(tmp_path, tiny_bundle):
    import json

    pytest.importorskip("llama_cpp")
    from t2i_sdk import Pipeline
    from t2i_sdk.bundle import component_dir, load_bundle
    from t2i_training.config import LoraSettings
    from t2i_training.policy import load_policy, save_adapter
    from t2i_training.rewriter_bundle import build_rewriter_bundle

    base = component_dir(tiny_bundle, load_bundle(tiny_bundle).components["rewriter"])
    package = tmp_path / "package"
    save_adapter(load_policy(base, lora=LoraSettings(r=4, alpha=8), quantization="none",
                             device="cpu"), package / "adapter")
    options = {"system_prompt": "Caption it.", "examples": [["2 dots", "two circles"]],
               "temperature": 0.0, "max_new_tokens": 8, "layout_from": "rewrite"}
    (package / "rewrite.json").write_text(json.dumps(options))
    out = build_rewriter_bundle(tmp_path / "bundle", base_model=base, package=package,
                                source_bundle=tiny_bundle, gguf_type="q8_0")
    manifest = load_bundle(out)  # hashes verified
    assert manifest.components["rewriter"].engine == "llama.cpp"
    assert manifest.components["drafter"].engine == "torch"
    pipe = Pipeline.from_pretrained(out, device="cpu", calibrate=False)
    assert pipe.config.rewrite.examples == (("2 dots", "two circles"),)
    assert pipe.config.rewrite.layout_from == "rewrite"
    result = pipe("a red apple", n_drafts=1, rounds=0, steps=2, rewriter="llm")
    assert len(result.rewrites) == 1 and not list(tmp_path.glob("rewriter-bundle-*"))
    with pytest.raises(InputError, match="adapter_config.json is missing"):
        build_rewriter_bundle(tmp_path / "b2", base_model=base, package=tmp_path / "nothing",
                              source_bundle=tiny_bundle)


# -- learning: DPO on a known preference moves the policy ------------------------------------

@pytest.fixture(scope="module")
def rewriter_base(tmp_path_factory):
    """A tiny Llama briefly pre-trained to answer like a lazy rewriter (see t2i_training.toy):
    setup of the base model, not SFT of the rewriter."""
    from t2i_training.toy import build_toy_rewriter

    return build_toy_rewriter(tmp_path_factory.mktemp("rewriter") / "base")


def test_dpo_learns_the_judges_preference(tmp_path, rewriter_base, tiny_bundle):
    from t2i_training.evaluation import compare_with_base
    from t2i_training.policy import load_policy

    from t2i_training.toy import toy_prompts

    prompts = toy_prompts()
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n")
    # Round 3 peaked at 0.68-0.74 in five trials; a 4th round sometimes over-optimizes
    # (0.57-0.76): the tiny model drifts into repetitive text.
    rounds = 3
    config = config_from_dict({
        "bundle": str(tiny_bundle), "base_model": str(rewriter_base),
        "prompts": str(tmp_path / "p.txt"), "run_dir": str(tmp_path / "run"),
        "rounds": rounds, "held_out_fraction": 0.0, "render": False, "quantization": "none",
        "device": "cpu", "dimensions": ["general_alignment"], "lora": {"r": 8, "alpha": 16},
        # A tiny model and 72 prompts need a far larger step than the paper's 5e-6; β = 0.5
        # keeps each round near its reference (β = 0.1 collapsed by round 3 in trials).
        "dpo": {"batch_size": 16, "micro_batch_size": 8, "learning_rate": 5e-3, "epochs": 4,
                "beta": 0.5, "gradient_checkpointing": False},
        # n = 2: with this coarse judge, larger n mostly ties at the bottom (no pair)
        "sampling": {"n_rewrites": 2, "temperature": 1.0, "max_new_tokens": 16}})
    judge = ProgrammaticJudge(keeps_objects_adds_color)
    reports = train(config, judge=judge)
    assert all(r["pairs"] >= 10 for r in reports)

    curve = [0.5]  # round 0 is the base policy itself: every comparison is a tie
    for r in range(1, rounds + 1):
        policy = load_policy(rewriter_base, adapter_dir=RunDir(config.run_dir).adapter_after(r),
                             lora=config.lora, quantization="none", device="cpu")
        rates = [compare_with_base(policy, prompts, judge, BlankRenderer(), ["general_alignment"],
                                   seed=s, temperature=1.0, max_new_tokens=16)
                 ["win_rate"]["vs_base"]["mean"] for s in (0, 1)]
        curve.append(round(sum(rates) / len(rates), 3))
    print(f"win rate vs base policy by round: {curve}")
    assert curve[1] < 0.65  # one round moves it only a little
    # Round 3 reached 0.73-0.74 on earlier machines and 0.681 on an AMX Xeon (same code, same
    # seeds: the CPU's float kernels change the samples). 0.65 is > 3 standard errors above
    # chance over these 2 x 72 comparisons.
    assert curve[-1] >= 0.65 and curve[-1] > curve[1]
