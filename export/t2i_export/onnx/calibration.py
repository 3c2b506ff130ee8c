"""Calibration data for static int8 quantisation of the drafter UNet, recorded from real runs.

The exported drafter with its fp32 UNet (text encoder and VAE decoder as exported, on
onnxruntime: the int8 text encoder when ``--int8`` is also given) generates images for a
handful of shapes-world prompts, laid out by the rule planner with the bundle's own box
geometry, guidance, size and GLIGEN schedule; every UNet call's inputs (latents, timestep,
prompt embeddings, GLIGEN boxes / phrase embeddings / masks, ``gligen_scale``) are recorded.
Those feeds are what ``quantize_static`` calibrates activation ranges on, so the ranges cover
all timesteps, the guided and unguided rows, and the grounded and ungrounded steps.

Calibration prompts are kept apart from evaluation: they are shapes-world captions that are
*not* in the default evaluation suite (``t2i_sdk.shapes.suites.held_out_suite`` at its default
seed and at its largest size, 50 per category) -- so no held-out composition and no prompt that
``t2i eval`` scores is used -- taken round-robin over the caption tags with a fixed seed.
single_object and counting have no such prompt (their whole vocabulary is in the suite), so
calibration sees two-object, position, color-attribute and the few remaining color prompts.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_SEED = 20240  # which prompts and image seeds; not the suite's 12345
DEFAULT_PROMPTS = 8
DEFAULT_STEPS = 25  # the budget planner's default drafter steps


def calibration_prompts(n: int = DEFAULT_PROMPTS, seed: int = CALIBRATION_SEED) -> list[str]:
    """``n`` shapes-world prompts outside the evaluation suite (see the module docstring)."""
    import numpy as np

    from t2i_sdk.shapes.captions import TAGS, all_captions
    from t2i_sdk.shapes.suites import held_out_suite
    from t2i_sdk.shapes.world import WorldConfig

    if n < 1:
        raise ValueError(f"calibration needs at least one prompt, got {n}")
    config = WorldConfig()
    evaluated = {c.prompt for c in held_out_suite(per_category=50)}
    pools = []
    for t, tag in enumerate(TAGS):
        pool = [c.prompt for c in all_captions(tag, config.shapes, config.colors)
                if c.prompt not in evaluated]
        order = np.random.default_rng([seed, t]).permutation(len(pool))
        pools.append([pool[int(i)] for i in order])
    prompts: list[str] = []
    while len(prompts) < n and any(pools):
        for pool in pools:
            if pool and len(prompts) < n:
                prompts.append(pool.pop(0))
    return prompts


class _RecordingGraph:
    """Stands in for the drafter's UNet runner: records each call's numpy feeds, then runs the
    real graph. Not an ``OrtModel``, so the engine hands it plain numpy (no IOBinding)."""

    def __init__(self, graph):
        self.graph = graph
        self.device = "cpu"
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, feeds: dict) -> dict:
        import numpy as np

        self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self.graph.run(feeds)


def record_unet_feeds(onnx_dir: Path, prompts: list[str], *, steps: int = DEFAULT_STEPS,
                      seed: int = CALIBRATION_SEED, engine_options: dict | None = None,
                      layout: dict | None = None,
                      unet: Path | None = None) -> list[dict[str, np.ndarray]]:
    """Run the exported drafter at ``onnx_dir`` on ``prompts`` (one image each, seed
    ``seed + i``, ``steps`` steps) and return every UNet call's feeds, in call order.

    ``engine_options``: the drafter's ``load`` options from the bundle (guidance_scale, height,
    width, gligen_beta); ``layout``: its rule-planner box geometry (``GeometryConfig`` fields).
    ``unet``: run this (fp32) UNet graph instead of the folder's own, which may be missing
    (the exporter records while the folder holds only the text encoder and VAE so far).
    """
    from t2i_sdk.planning.box_geometry import GeometryConfig
    from t2i_sdk.planning.rule_planner import RulePlanner

    engine = _drafter(Path(onnx_dir), unet, dict(engine_options or {}))
    recorder = _RecordingGraph(engine.unet)
    engine.unet = recorder
    planner = RulePlanner(GeometryConfig(**(layout or {})))
    for i, prompt in enumerate(prompts):
        plan = planner.plan(prompt)
        engine.generate(prompt, [o.phrase for o in plan.objects],
                        [list(o.box) for o in plan.objects], [seed + i], steps)
    return recorder.feeds


def _drafter(folder: Path, unet: Path | None, options: dict):
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine
    from t2i_engines.onnxruntime.session import OrtModel
    from t2i_export.onnx.export_manifest import read_manifest

    if unet is None:
        return OrtGligenDrafterEngine.load(folder, device="cpu", **options)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ValueError(f"{folder}: no onnx_export.json to record calibration inputs with")
    graphs = {name: OrtModel.load(folder / entry["path"], device="cpu")
              for name, entry in manifest["graphs"].items() if name != "unet"}
    graphs["unet"] = OrtModel.load(unet, device="cpu")
    missing = {"text_encoder", "vae_decoder"} - set(graphs)
    if missing:
        raise ValueError(f"{folder}: {', '.join(sorted(missing))} must be exported before the "
                         "UNet is calibrated")
    return OrtGligenDrafterEngine(folder, graphs, manifest["pipeline"],
                                  guidance_scale=options.get("guidance_scale", 7.5),
                                  height=options.get("height"), width=options.get("width"),
                                  gligen_beta=options.get("gligen_beta", 0.3), progress=False,
                                  regional_prompts=options.get("regional_prompts"))


class FeedsReader:
    """A ``CalibrationDataReader`` over recorded feeds (``get_next`` returns None when done;
    ``rewind`` starts over). Built lazily so importing this module needs no onnxruntime."""

    def __new__(cls, feeds: list[dict]):
        from onnxruntime.quantization import CalibrationDataReader

        class _Reader(CalibrationDataReader):
            def __init__(self, feeds):
                self.feeds = list(feeds)
                self._next = 0

            def get_next(self):
                if self._next >= len(self.feeds):
                    return None
                self._next += 1
                return self.feeds[self._next - 1]

            def rewind(self):
                self._next = 0

            def __len__(self):
                return len(self.feeds)

        return _Reader(feeds)


def calibration_settings(component_options: dict | None, *, n_prompts: int = DEFAULT_PROMPTS,
                         steps: int = DEFAULT_STEPS, seed: int = CALIBRATION_SEED) -> dict:
    """What a calibrated export records in its manifest and runs: the prompts, steps, seed and
    the drafter's bundle options that shape the UNet inputs (JSON-able)."""
    from t2i_sdk.bundle.options import engine_kwargs

    options = dict(component_options or {})
    return {"prompts": calibration_prompts(n_prompts, seed), "steps": steps, "seed": seed,
            "engine_options": engine_kwargs("drafter", options),
            "layout": options.get("layout") or {}}


__all__ = ["CALIBRATION_SEED", "DEFAULT_PROMPTS", "DEFAULT_STEPS", "calibration_prompts",
           "record_unet_feeds", "FeedsReader", "calibration_settings"]
