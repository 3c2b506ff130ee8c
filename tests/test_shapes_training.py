"""CPU smoke of the shapes training stages: a few steps each at toy sizes, exact resume, and an
assembled bundle that ``t2i_sdk.Pipeline`` loads and runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from t2i_training.shapes.checkpoints import latest_checkpoint  # noqa: E402
from t2i_training.shapes.cli import main, run_stage  # noqa: E402
from t2i_training.shapes.data import MAX_GLIGEN_OBJECTS, scene_batch  # noqa: E402

STEPS = 2


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """All four stages at toy sizes, STEPS steps each, in one run dir."""
    torch.set_num_threads(2)
    run_dir = tmp_path_factory.mktemp("shapes-run")
    summaries = {stage: run_stage(stage, run_dir, STEPS, None, tiny=True, progress=False)
                 for stage in ("clip", "vae", "drafter", "refiner")}
    return run_dir, summaries


def test_batches_are_deterministic_by_seed_and_index():
    a, b, c = scene_batch(7, 3, 4), scene_batch(7, 3, 4), scene_batch(7, 4, 4)
    assert a.captions == b.captions
    assert torch.equal(a.pixels(), b.pixels())
    assert a.captions != c.captions
    px = a.pixels()
    assert px.shape == (4, 3, 64, 64) and px.min() >= -1 and px.max() <= 1
    crops = a.crops(32, np.random.default_rng(0), jitter=0.1)
    assert len(crops) == sum(len(s.objects) for s in a.scenes)
    assert all(c.image.size == (32, 32) for c in crops)
    assert [c.phrase for c in crops] == [o.phrase for s in a.scenes for o in s.objects]
    boxes, phrases = a.grounding()
    assert boxes.shape == (4, MAX_GLIGEN_OBJECTS, 4)
    n0 = len(a.scenes[0].objects)
    assert np.allclose(boxes[0, :n0], [o.box for o in a.scenes[0].objects])
    assert not boxes[0, n0:].any() and len(phrases[0]) == n0


def test_contrastive_loss_treats_repeated_texts_as_positives():
    from t2i_training.shapes.clip_train import contrastive_loss

    texts = torch.eye(3)
    labels = torch.tensor([0, 0, 1, 2])  # two images of text 0
    aligned, acc = contrastive_loss(texts[labels], texts, labels, torch.tensor(20.0))
    shuffled, _ = contrastive_loss(texts[torch.tensor([1, 2, 0, 0])], texts, labels,
                                   torch.tensor(20.0))
    assert acc.item() == 1.0
    # The floor: text 0's target is uniform over its 2 images (entropy log 2), 1 of 3 texts,
    # half of the symmetric loss. Treating image 1 as a negative of text 0 would cost ~20x more.
    assert aligned.item() == pytest.approx(np.log(2) / 6, abs=1e-3)
    assert shuffled.item() > 10


def test_every_stage_trains_and_writes_its_final(trained_run):
    run_dir, summaries = trained_run
    for stage, summary in summaries.items():
        assert summary["steps"] == STEPS and summary["finished"]
        assert np.isfinite(summary["final_loss"])
        assert (run_dir / stage / "final").is_dir()
        assert latest_checkpoint(run_dir / stage).name == f"step_{STEPS:08d}"
        logged = [json.loads(line) for line in (run_dir / stage / "log.jsonl").read_text().splitlines()]
        assert logged[-1]["step"] == STEPS
    assert summaries["vae"]["scaling_factor"] > 0


def test_drafter_text_encoder_is_the_clip_text_tower(trained_run):
    from diffusers import StableDiffusionGLIGENPipeline
    from transformers import CLIPModel

    run_dir, _ = trained_run
    clip = CLIPModel.from_pretrained(str(run_dir / "clip" / "final"))
    drafter = StableDiffusionGLIGENPipeline.from_pretrained(str(run_dir / "drafter" / "final"))
    theirs = drafter.text_encoder.state_dict()
    ours = clip.text_model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert drafter.unet.config.attention_type == "gated"


def test_refiner_is_a_plain_unet_started_from_the_drafter(trained_run):
    from diffusers import UNet2DConditionModel

    run_dir, _ = trained_run
    refiner = UNet2DConditionModel.from_pretrained(str(run_dir / "refiner" / "final" / "unet"))
    assert refiner.config.attention_type == "default"
    assert not any("fuser" in k or "position_net" in k for k in refiner.state_dict())


def test_resume_continues_exactly(tmp_path):
    """2 steps + resume for 2 more == 4 steps straight: same weights, bit for bit."""
    from safetensors.torch import load_file

    run_stage("clip", tmp_path / "split", 2, None, tiny=True, progress=False)
    resumed = run_stage("clip", tmp_path / "split", 4, None, tiny=True, progress=False)
    run_stage("clip", tmp_path / "straight", 4, None, tiny=True, progress=False)
    assert resumed["steps"] == 4
    a = load_file(latest_checkpoint(tmp_path / "split" / "clip") / "model.safetensors")
    b = load_file(latest_checkpoint(tmp_path / "straight" / "clip") / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished stage run again does no more steps
    again = run_stage("clip", tmp_path / "straight", 4, None, tiny=True, progress=False)
    assert again["steps"] == 4


def test_assembled_bundle_loads_and_runs_in_the_pipeline(trained_run, tmp_path):
    from t2i_sdk import Pipeline
    from t2i_sdk.bundle import load_bundle

    run_dir, _ = trained_run
    out = tmp_path / "shapes"
    assert main(["assemble", "--run-dir", str(run_dir), "--out", str(out)]) == 0
    manifest = load_bundle(out, verify=True)
    assert set(manifest.components) == {"drafter", "scorer", "refiner"}
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert "| drafter | 2 |" in (out / "TRAINING.md").read_text()
    pipe = Pipeline.from_pretrained(out, device="cpu", calibrate=False)
    result = pipe("a photo of a red star left of a blue circle", seed=0, n_drafts=2, steps=2,
                  rounds=1)
    assert result.image.size == (64, 64)
    assert len(result.layout.objects) == 2  # the rule planner grounded both objects
    assert any(c.round == 1 for c in result.candidates)  # the refiner ran


def test_a_run_seeded_from_a_bundle_continues_from_its_weights(trained_run, tmp_path, capsys):
    """init copies a bundle into a run; the drafter warm-starts from it; a decoder-only VAE
    fine-tune changes the decoder alone; assemble ships that VAE in both diffusion models."""
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    from t2i_training.shapes.warm_start import warm_start_unet

    run_dir, _ = trained_run
    bundle, seeded = tmp_path / "bundle", tmp_path / "seeded"
    assert main(["assemble", "--run-dir", str(run_dir), "--out", str(bundle)]) == 0
    assert main(["init", "--from", str(bundle), "--run-dir", str(seeded)]) == 0
    assert main(["init", "--from", str(bundle), "--run-dir", str(seeded)]) == 2  # one line, no traceback
    assert "already trained" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="use --decoder-only"):  # keeps the drafter's latents
        run_stage("vae", seeded, STEPS, None, tiny=True, progress=False)

    unet_file = "unet/diffusion_pytorch_model.safetensors"
    shipped = load_file(bundle / "drafter" / unet_file)
    probe = torch.nn.Linear(1, 1)
    probe.load_state_dict = lambda state: probe.__dict__.setdefault("loaded", state)
    assert warm_start_unet(seeded / "drafter", [probe])
    assert all(torch.equal(probe.loaded[k], shipped[k]) for k in shipped)

    before = AutoencoderKL.from_pretrained(str(seeded / "vae" / "final"))
    summary = run_stage("vae", seeded, STEPS, None, tiny=True, progress=False, decoder_only=True)
    after = AutoencoderKL.from_pretrained(str(seeded / "vae" / "final"))
    assert summary["scaling_factor"] == before.config.scaling_factor
    enc_a, enc_b = before.encoder.state_dict(), after.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    dec_a, dec_b = before.decoder.state_dict(), after.decoder.state_dict()
    assert any(not torch.equal(dec_a[k], dec_b[k]) for k in dec_a)

    run_stage("refiner", seeded, STEPS, None, tiny=True, progress=False)
    run_stage("clip", seeded, STEPS, None, tiny=True, progress=False)
    printed = capsys.readouterr().out
    assert "refiner: warm start" in printed and "clip: warm start" in printed
    assert not (seeded / "clip" / "tokenizer").exists()  # the scorer's vocabulary is kept

    out = tmp_path / "rebuilt"
    assert main(["assemble", "--run-dir", str(seeded), "--out", str(out)]) == 0
    vae_file = "vae/diffusion_pytorch_model.safetensors"
    tuned = load_file(seeded / "vae" / "final" / "diffusion_pytorch_model.safetensors")
    for role in ("drafter", "refiner"):
        shipped_vae = load_file(out / role / vae_file)
        assert all(torch.equal(shipped_vae[k], tuned[k]) for k in tuned)


def test_decoder_only_needs_a_trained_vae(tmp_path):
    with pytest.raises(FileNotFoundError, match="decoder-only needs a trained VAE"):
        run_stage("vae", tmp_path, STEPS, None, tiny=True, progress=False, decoder_only=True)


def test_a_drafter_with_more_levels_keeps_every_shipped_tensor(trained_run, tmp_path, capsys):
    """The 3-level drafter warm-starts from a 2-level one: down blocks and the mid block keep
    their names, up block i moves to i + 1, only the new level starts fresh; the gate is logged."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    run_dir, _ = trained_run
    bundle, seeded = tmp_path / "bundle", tmp_path / "seeded"
    assert main(["assemble", "--run-dir", str(run_dir), "--out", str(bundle)]) == 0
    assert main(["init", "--from", str(bundle), "--run-dir", str(seeded)]) == 0
    old = load_file(bundle / "drafter" / "unet" / "diffusion_pytorch_model.safetensors")
    run_stage("drafter", seeded, 1, None, tiny=True, progress=False, unet_channels=(8, 16, 16))
    assert "the UNet gained levels" in capsys.readouterr().out
    unet = UNet2DConditionModel.from_pretrained(str(seeded / "drafter" / "final" / "unet"))
    assert list(unet.config.block_out_channels) == [8, 16, 16]
    grown = unet.state_dict()
    assert "down_blocks.2.attentions.0.transformer_blocks.0.fuser.alpha_attn" in grown
    moved = {k.replace("up_blocks.1.", "up_blocks.2.").replace("up_blocks.0.", "up_blocks.1.")
             if k.startswith("up_blocks.") else k: k for k in old}
    assert set(moved) <= set(grown)  # every old tensor has its place in the grown UNet
    log = [json.loads(line) for line in (seeded / "drafter" / "log.jsonl").read_text().splitlines()]
    assert 0.0 < log[-1]["gate"] <= 1.0


def test_a_box_masked_drafter_is_marked_and_bundled_so(trained_run, tmp_path, capsys):
    """--box-mask trains with masked fusers, marks the final, and the bundle's drafter loads
    masked; going on from a masked drafter without the flag is refused."""
    from t2i_engines.box_mask_marker import is_box_masked
    from t2i_engines.pytorch.gligen_box_mask import BoxMaskedFuser
    from t2i_sdk import Pipeline

    run_dir, _ = trained_run
    bundle, seeded, masked_bundle = tmp_path / "bundle", tmp_path / "seeded", tmp_path / "masked"
    assert main(["assemble", "--run-dir", str(run_dir), "--out", str(bundle)]) == 0
    assert main(["init", "--from", str(bundle), "--run-dir", str(seeded)]) == 0
    assert main(["drafter", "--run-dir", str(seeded), "--steps", "1", "--tiny", "--quiet",
                 "--box-mask", "--threads", "1"]) == 0
    assert is_box_masked(seeded / "drafter" / "final" / "unet")
    assert main(["assemble", "--run-dir", str(seeded), "--out", str(masked_bundle)]) == 0
    with Pipeline.from_pretrained(masked_bundle) as pipe:
        unet = pipe.drafter.engine.pipe.unet
        assert any(isinstance(m, BoxMaskedFuser) for m in unet.modules())
    capsys.readouterr()
    assert main(["drafter", "--run-dir", str(seeded), "--steps", "2", "--tiny", "--quiet",
                 "--threads", "1"]) == 2
    assert "pass --box-mask" in capsys.readouterr().err


def test_unet_channels_is_for_the_drafter_only(tmp_path, capsys):
    for argv in (["refiner", "--unet-channels", "8,16"], ["drafter", "--unet-channels", "8,x"],
                 ["refiner", "--box-mask"], ["drafter", "--caption-only-drop", "2"],
                 ["vae", "--caption-only-drop", "0.3"]):
        with pytest.raises(SystemExit) as exit_:  # argparse: usage + one line, exit 2
            main([*argv, "--run-dir", str(tmp_path)])
        assert exit_.value.code == 2 and argv[1] in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was started


def test_training_report_carries_the_run_findings(tmp_path):
    from t2i_training.shapes.assemble import FINDINGS, training_report

    (tmp_path / FINDINGS).write_text("## Why the boxes were ignored\n\nno position signal\n")
    report = training_report(tmp_path, {"drafter": {"params": 2e6, "files_mb": 9.0}}, 9.0)
    assert "## Why the boxes were ignored" in report and "| drafter | 2.00 M | 9.0 MiB |" in report


def test_high_noise_weights_are_the_clipped_x0_weight():
    from t2i_training.shapes.diffusion import high_noise_weights, train_scheduler

    scheduler = train_scheduler()
    t = torch.tensor([0, 300, 500, 700, 999])
    w = high_noise_weights(scheduler, t, 8.0)
    alpha_bar = scheduler.alphas_cumprod[500]
    assert w[0] == 1.0 and w[-1] == 8.0 and torch.all(w[1:] >= w[:-1])  # rises with the noise
    assert w[2] == pytest.approx(float((1 - alpha_bar) / alpha_bar))  # 1/SNR between the clips
    assert torch.all(high_noise_weights(scheduler, t, 1.0) == 1.0)  # gamma 1: plain epsilon loss
