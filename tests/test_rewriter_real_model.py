"""The DPO loop on the real SmolLM2-135M-Instruct (short): free-form shapes prompts, the shapes
bundle renders, the four-dimension shapes judge votes, TRL's DPOTrainer moves the LoRA."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

REPO = Path(__file__).resolve().parents[1]
SHAPES_BUNDLE = REPO / "bundles" / "shapes"


def test_one_short_round_on_the_real_model_learns_from_real_preferences(smollm2_dir, tmp_path):
    from safetensors.torch import load_file

    from t2i_engines.finite_grammar import sentences
    from t2i_sdk.shapes.caption_grammar import caption_grammar
    from t2i_training.config import config_from_dict, load_config
    from t2i_training.rounds import train

    torch.set_num_threads(1)
    shipped = load_config(REPO / "training" / "examples" / "shapes_smollm2_v5.yaml")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in (
        {"prompt": "draw 3 plus signs", "caption": "a photo of three crosses"},
        {"prompt": "hey, could you draw a scarlet box?", "caption": "a photo of a red square"},
        {"prompt": "show me a lemon dot", "caption": "a photo of a yellow circle"},
        {"prompt": "i want a picture of a pyramid along with a hex",
         "caption": "a photo of a triangle and a hexagon"})))
    config = config_from_dict({
        **{k: v for k, v in shipped.to_dict().items()
           if k in ("dimensions", "rewrite", "lora", "pairs_per_prompt")},
        "bundle": str(SHAPES_BUNDLE), "base_model": str(smollm2_dir), "run_dir": str(tmp_path / "run"),
        "prompts": str(prompts), "eval_prompts": str(prompts), "max_eval_prompts": 1, "rounds": 1,
        "render_steps": 4, "quantization": "none", "judge": {"kind": "shapes"},
        "sampling": {"n_rewrites": 4, "temperature": 1.0, "max_new_tokens": 16},
        "dpo": {"learning_rate": 1e-4, "batch_size": 4, "micro_batch_size": 2, "epochs": 1,
                "max_length": 384, "gradient_checkpointing": False}})
    [report] = train(config)

    assert report["prompts"] == 4 and report["pairs"] >= 1  # ties no longer starve the loop
    # The shipped chat decodes under the drafter's caption grammar: every sample is a caption.
    captions = set(sentences(caption_grammar()))
    sampled = [r["text"] for line in (tmp_path / "run" / "round_01" / "rewrites.jsonl").open()
               for r in json.loads(line)["rewrites"]]
    assert len(sampled) == 16 and set(sampled) <= captions
    assert report["pairs"] + sum(report["skipped"].values()) == 4
    # several best x worst pairs per prompt (v5), never the same two texts twice
    records = [json.loads(line) for line in (tmp_path / "run" / "round_01" / "pairs.jsonl").open()]
    trained = []
    for rec in (r for r in records if r["skipped"] is None):
        both = [(x["chosen_raw"], x["rejected_raw"]) for x in [rec, *rec.get("more", [])]]
        assert len(both) <= 4 and len(set(both)) == len(both) and all(c != r for c, r in both)
        trained += both
    assert report["dpo_pairs"] == report["dpo"]["pairs"] == len(trained) >= report["pairs"]
    votes = [json.loads(line) for line in (tmp_path / "run" / "round_01" / "votes.jsonl").open()]
    assert set(votes[0]["table"]["votes"]) == {"quality", "general_alignment",
                                               "physical_alignment", "aesthetics"}
    assert report["dpo"]["steps"] >= 1 and report["dpo"]["quantization"] == "none"
    adapter = load_file(tmp_path / "run" / "round_01" / "adapter" / "adapter_model.safetensors")
    moved = [t for name, t in adapter.items() if "lora_B" in name and t.abs().max() > 0]
    assert moved  # LoRA B starts at zero: DPO steps moved it
    assert report["eval_prompts"] == 1 and report["win_rate"]["vs_original"]["mean"] is not None
