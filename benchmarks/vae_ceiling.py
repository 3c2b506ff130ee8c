"""How much GenEval accuracy a VAE leaves to any drafter of the shapes world: render the
ground-truth scene of each held-out prompt, encode and decode it (posterior mean), and score the
reconstruction with the shapes detector + GenEval rules. A drafter that produced the exact
latents of the truth would score this.

    python benchmarks/vae_ceiling.py [VAE_DIR ...] [--per-category 16]

VAE_DIR defaults to bundles/shapes/drafter/vae. Writes benchmarks/results/shapes/vae_ceiling.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ceiling(vae_dir: str, per_category: int) -> dict:
    import numpy as np
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    from t2i_sdk.shapes.detect import detect
    from t2i_sdk.shapes.geneval import evaluate, summarize
    from t2i_sdk.shapes.render import render_scene
    from t2i_sdk.shapes.suites import held_out_suite, reference_scenes

    vae = AutoencoderKL.from_pretrained(vae_dir, use_safetensors=True).eval()
    captions = held_out_suite("shapes", per_category)
    images = [render_scene(s) for s in reference_scenes(captions, seed=1)]
    x = torch.from_numpy(np.stack([np.asarray(i, np.float32) / 127.5 - 1 for i in images]))
    with torch.no_grad():
        recon = vae.decode(vae.encode(x.permute(0, 3, 1, 2)).latent_dist.mean).sample.clamp(-1, 1)
    pixels = ((recon.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    verdicts = [evaluate(c, detect(Image.fromarray(p)), (64, 64)) for c, p in zip(captions, pixels)]
    truth = [evaluate(c, detect(i), i.size) for c, i in zip(captions, images)]
    return {"vae": vae_dir, "prompts": len(captions), "ground_truth": summarize(truth).overall,
            **summarize(verdicts).to_dict()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("vae_dirs", nargs="*", default=[str(ROOT / "bundles/shapes/drafter/vae")])
    p.add_argument("--per-category", type=int, default=16)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/shapes/vae_ceiling.json"))
    args = p.parse_args(argv)
    from t2i_sdk.bundle.atomic import atomic_write_text

    results = [ceiling(d, args.per_category) for d in args.vae_dirs]
    for r in results:
        print(f"{r['vae']}: ceiling {r['overall']:.3f} (ground truth {r['ground_truth']:.3f})")
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
