"""The numpy schedulers and noise source the torch-free engines run, step for step against
diffusers and torch (skipped where those are not installed, as in the torch-free venv)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from t2i_engines.noise import SeededNoise, batch_noise
from t2i_engines.schedulers import DDIM, SCHEDULERS, load_scheduler

ROOT = Path(__file__).resolve().parents[1]
SHAPES_DDIM = json.loads((ROOT / "bundles/shapes/drafter/scheduler/scheduler_config.json").read_text())
SD_BASE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
           "num_train_timesteps": 1000, "steps_offset": 1}
DDIM_CONFIGS = [
    SHAPES_DDIM,
    {**SD_BASE, "_class_name": "DDIMScheduler", "set_alpha_to_one": False, "clip_sample": False},
    {**SD_BASE, "_class_name": "DDIMScheduler", "timestep_spacing": "linspace",
     "prediction_type": "v_prediction", "clip_sample": True},
    {"_class_name": "DDIMScheduler", "beta_schedule": "linear", "timestep_spacing": "leading"},
]
EULER_CONFIGS = [
    {**SD_BASE, "_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"},
    {**SD_BASE, "_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "leading"},
    {**SD_BASE, "_class_name": "EulerAncestralDiscreteScheduler",
     "prediction_type": "v_prediction"},
]


def test_noise_is_torchs_cpu_randn_for_the_same_seed():
    torch = pytest.importorskip("torch")
    for seed in (0, 7, 2**33 + 5):  # torch seeds with the low 32 bits, and so do we
        g, ours = torch.Generator().manual_seed(seed), SeededNoise(seed)
        for shape in ((1, 4, 8, 8), (1, 4, 7, 9), (2, 16)):  # 7x9 has a 16-value tail redo
            np.testing.assert_allclose(ours.randn(shape), torch.randn(shape, generator=g).numpy(),
                                       atol=5e-6)


def test_noise_streams_are_per_seed_and_refuse_tiny_draws():
    a = batch_noise([SeededNoise(1), SeededNoise(2)], (4, 4, 4))
    b = batch_noise([SeededNoise(2)], (4, 4, 4))
    np.testing.assert_array_equal(a[1], b[0])  # an image's noise depends on its seed only
    assert abs(float(a.mean())) < 0.2 and 0.8 < float(a.std()) < 1.2
    with pytest.raises(ValueError, match="fewer than 16"):
        SeededNoise(0).randn((3, 3))


def _run_ours(scheduler, steps, outputs, sample, seeds):
    scheduler.set_timesteps(steps)
    noise = [SeededNoise(s) for s in seeds]
    for i in range(len(scheduler.timesteps)):
        model_input = scheduler.scale_model_input(sample, i)
        sample = scheduler.step(outputs[i] + 0.01 * model_input, i, sample, noise)
    return sample


def _run_diffusers(scheduler, steps, outputs, sample, seeds):
    import torch

    scheduler.set_timesteps(steps)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    # as our pipelines call it: η = 0 for DDIM, one generator per image for ancestral steps
    extra = {"eta": 0.0} if "DDIM" in type(scheduler).__name__ else {"generator": gens}
    sample = torch.from_numpy(sample)
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(sample, t)
        out = torch.from_numpy(outputs[i]) + 0.01 * model_input
        sample = scheduler.step(out, t, sample, **extra).prev_sample
    return sample.numpy()


@pytest.mark.parametrize("config", DDIM_CONFIGS + EULER_CONFIGS,
                         ids=lambda c: f"{c['_class_name']}-{c.get('timestep_spacing', '-')}"
                                       f"-{c.get('prediction_type', 'epsilon')}")
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_steps_match_diffusers(config, steps):
    diffusers = pytest.importorskip("diffusers")
    rng = np.random.default_rng(steps)
    seeds = [3, 11]
    outputs = rng.standard_normal((steps, 2, 4, 8, 8)).astype(np.float32)
    theirs = getattr(diffusers, config["_class_name"]).from_config(config)
    ours = SCHEDULERS[config["_class_name"]](config)
    theirs.set_timesteps(steps)
    ours.set_timesteps(steps)
    np.testing.assert_allclose(ours.timesteps, theirs.timesteps.numpy(), atol=1e-4)
    assert ours.init_noise_sigma == pytest.approx(float(theirs.init_noise_sigma), rel=1e-5)
    start = (SeededNoise(5).randn((2, 4, 8, 8)) * ours.init_noise_sigma).astype(np.float32)
    np.testing.assert_allclose(_run_ours(ours, steps, outputs, start, seeds),
                               _run_diffusers(theirs, steps, outputs, start, seeds),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config", [DDIM_CONFIGS[0], EULER_CONFIGS[0]],
                         ids=["DDIM", "EulerAncestral"])
def test_add_noise_matches_diffusers_img2img_start(config):
    diffusers = pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    theirs = getattr(diffusers, config["_class_name"]).from_config(config)
    ours = SCHEDULERS[config["_class_name"]](config)
    theirs.set_timesteps(4)
    ours.set_timesteps(4)
    x0 = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    noise = SeededNoise(9).randn((1, 4, 8, 8))
    begin = 2  # strength 0.5 of 4 steps
    if hasattr(theirs, "set_begin_index"):
        theirs.set_begin_index(begin)
    want = theirs.add_noise(torch.from_numpy(x0), torch.from_numpy(noise),
                            theirs.timesteps[begin:begin + 1]).numpy()
    np.testing.assert_allclose(ours.add_noise(x0, noise, begin), want, rtol=1e-5, atol=1e-5)


def test_load_scheduler_reads_the_class_name_and_refuses_others(tmp_path):
    (tmp_path / "scheduler_config.json").write_text(json.dumps(SHAPES_DDIM))
    assert isinstance(load_scheduler(tmp_path), DDIM)
    (tmp_path / "scheduler_config.json").write_text(json.dumps({"_class_name": "LMSDiscreteScheduler"}))
    with pytest.raises(ValueError, match="LMSDiscreteScheduler.*not supported"):
        load_scheduler(tmp_path)
    (tmp_path / "scheduler_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_scheduler(tmp_path)
