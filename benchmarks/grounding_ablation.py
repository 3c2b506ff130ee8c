"""Does the drafter put each object in its box? Ablations behind bundles/shapes/TRAINING.md.

    python benchmarks/grounding_ablation.py NAME=BUNDLE [NAME=BUNDLE ...] [--betas 0.3 1.0] [--box-mask]

For each bundle and each GLIGEN ``gligen_scheduled_sampling_beta`` (share of denoising steps
that see the boxes), three measurements, same seeds everywhere:
* **probe**: one object ("a red star") in a random box of the training size range, plain
  prompt; the share of images with that object's centre in its box, against the share whose
  centre falls in *another* random box of the same size (what ignoring the box would score);
* **suite**: the held-out shapes suite with the rule layout and one draft: GenEval accuracy
  per category and box adherence (``t2i_sdk.shapes.adherence``);
* **box sensitivity** (once per bundle): the UNet's epsilon loss on 64 training-stream scenes
  with their true boxes vs the same boxes mirrored left-right, at t = 900, 700, 500. A UNet
  that uses its boxes predicts worse with the wrong ones; +0 % means the boxes are ignored.
Appends one JSON record per (bundle, beta) to ``--out`` (default
benchmarks/results/shapes/grounding_ablation.json), with the machine's load and threads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def probe(drafter, n: int, seed: int = 0) -> dict:
    """Single objects in random boxes: centre-in-box rate vs the rate for a decoy box."""
    from t2i_sdk.shapes import DEFAULT_COLORS, SHAPES, WorldConfig, detect

    world = WorldConfig()  # boxes drawn like training boxes: side range, border
    rng = np.random.default_rng(seed)
    hit = decoy = found = 0
    for i in range(n):
        shape, color = SHAPES[i % len(SHAPES)], DEFAULT_COLORS[int(rng.integers(len(DEFAULT_COLORS)))]
        side = rng.uniform(world.min_side, world.max_side)
        box, other = (_box(rng.uniform(world.border, 1 - world.border - side, 2), side)
                      for _ in range(2))
        phrase = f"a {color} {shape}"
        image = drafter.generate(f"a photo of {phrase}", [phrase], [box], [10_000 + i], 25)[0]
        matches = [d for d in detect(image) if d.shape == shape and d.color == color]
        if matches:
            found += 1
            hit += _inside(matches[0].center, box)
            decoy += _inside(matches[0].center, other)
    return {"n": n, "found": found / n, "centre_in_box": hit / n, "centre_in_decoy_box": decoy / n}


def _box(corner, side: float) -> tuple[float, float, float, float]:
    return (float(corner[0]), float(corner[1]), float(corner[0] + side), float(corner[1] + side))


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def box_sensitivity(gligen_pipe, timesteps=(900, 700, 500), n: int = 64) -> dict:
    """Relative rise of the epsilon loss when every box is mirrored left-right, per timestep."""
    import torch
    import torch.nn.functional as F

    from t2i_training.shapes.data import MAX_GLIGEN_OBJECTS, scene_batch
    from t2i_training.shapes.diffusion import TextEmbeddings, encode_latents, train_scheduler

    unet = gligen_pipe.unet.eval()
    text = TextEmbeddings(gligen_pipe.text_encoder, gligen_pipe.tokenizer)
    generator = torch.Generator().manual_seed(0)
    batch = scene_batch(99, 0, n)  # seed 99: a stream no training stage draws from
    latents = encode_latents(gligen_pipe.vae, batch.pixels(), generator)
    boxes, phrases = batch.grounding()
    embeddings = torch.zeros(n, MAX_GLIGEN_OBJECTS, text.text_encoder.config.hidden_size)
    masks = torch.zeros(n, MAX_GLIGEN_OBJECTS)
    for i, items in enumerate(phrases):
        embeddings[i, :len(items)] = text.phrases(items)
        masks[i, :len(items)] = 1.0
    true = torch.from_numpy(boxes)
    mirrored = torch.stack([1 - true[..., 2], true[..., 1], 1 - true[..., 0], true[..., 3]], -1)
    mirrored = mirrored * masks[..., None]
    scheduler, prompts, out = train_scheduler(), text.prompts(batch.captions), {}
    for step in timesteps:
        t = torch.full((n,), step)
        noise = torch.randn(latents.shape, generator=generator)
        noisy = scheduler.add_noise(latents, noise, t)
        losses = []
        with torch.no_grad():
            for b in (true, mirrored):
                kwargs = {"gligen": {"boxes": b, "positive_embeddings": embeddings, "masks": masks}}
                losses.append(F.mse_loss(unet(noisy, t, prompts, cross_attention_kwargs=kwargs).sample,
                                         noise).item())
        out[f"t{step}"] = {"true": round(losses[0], 5), "mirrored": round(losses[1], 5),
                           "rise": round(losses[1] / losses[0] - 1, 4)}
    return out


def suite(pipe, per_category: int) -> dict:
    from t2i_sdk.cli.eval_cmd import SEED_STRIDE
    from t2i_sdk.shapes import held_out_suite

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from shapes_table import adherence_score, geneval_score, judge_with_boxes

    correct, adherence = {}, {}
    for i, cap in enumerate(held_out_suite("shapes", per_category)):
        result = pipe(cap.prompt, seed=i * SEED_STRIDE, planner="rule", rewriter="identity",
                      n_rewrites=1, n_drafts=1, rounds=0)
        ok, adh = judge_with_boxes(cap, result.image, result.layout)
        correct.setdefault(cap.tag, []).append(ok)
        adherence.setdefault(cap.tag, []).append(adh)
    return {**geneval_score(correct), **adherence_score(adherence)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundles", nargs="+", help="NAME=BUNDLE_DIR")
    p.add_argument("--betas", type=float, nargs="+", default=[0.3])
    p.add_argument("--probe", type=int, default=48, help="single-object probe images")
    p.add_argument("--sensitivity-only", action="store_true", help="only the box-sensitivity check")
    p.add_argument("--per-category", type=int, default=16, help="suite prompts per category")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--box-mask", action="store_true",
                   help="run each drafter box-masked (t2i_engines.pytorch.gligen_box_mask), "
                        "whatever it was trained with: the training-free row")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes" / "grounding_ablation.json"))
    args = p.parse_args(argv)
    import torch

    from t2i_sdk.bundle.atomic import atomic_write_text
    from t2i_sdk.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    records = json.loads(out.read_text()) if out.is_file() else []
    for spec in args.bundles:
        name, _, bundle = spec.partition("=")
        pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False)
        if args.box_mask:
            from t2i_engines.pytorch.gligen_box_mask import make_box_masked
            make_box_masked(pipe.drafter.engine.pipe.unet)
        masked = any(type(m).__name__ == "BoxMaskedFuser"
                     for m in pipe.drafter.engine.pipe.unet.modules())
        sensitivity = box_sensitivity(pipe.drafter.engine.pipe)
        for beta in [None] if args.sensitivity_only else args.betas:  # the loss has no beta
            start = time.monotonic()
            record = {"name": name, "bundle": bundle, "gligen_beta": beta, "box_mask": masked,
                      "box_sensitivity": sensitivity}
            if beta is not None:
                pipe.drafter.engine.gligen_beta = beta
                record.update(probe=probe(pipe.drafter.engine, args.probe),
                              suite=suite(pipe, args.per_category))
            record.update(wall_s=round(time.monotonic() - start, 1),
                          load_average=os.getloadavg()[0], threads=args.threads)
            print(json.dumps(record), file=sys.stderr)
            records.append(record)
            atomic_write_text(out, json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
