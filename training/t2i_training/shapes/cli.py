"""``python -m t2i_training.shapes.cli {init|clip|vae|drafter|refiner|assemble} --run-dir DIR``

Each training stage resumes from its latest checkpoint, stops at ``--steps`` or after
``--minutes`` (this session), and (re)writes ``DIR/<stage>/final``. Seeds are fixed per stage.
``init --from BUNDLE`` seeds a new run dir with a bundle's weights, so training continues from
what the repository ships (the drafter warm-starts; ``vae --decoder-only`` sharpens the decoder
while keeping the latent space the drafter was trained on).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

DEFAULT_STEPS = {"clip": 4000, "vae": 6000, "drafter": 40000, "refiner": 6000}
CHECKPOINT_EVERY = {"clip": 200, "vae": 200, "drafter": 100, "refiner": 100}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m t2i_training.shapes.cli",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("init", *DEFAULT_STEPS, "assemble"))
    parser.add_argument("--run-dir", required=True, help="where checkpoints and finals live")
    parser.add_argument("--steps", type=int, default=None, help="global step target")
    parser.add_argument("--minutes", type=float, default=None, help="wall-time cap, this session")
    parser.add_argument("--out", default="bundles/shapes", help="assemble: bundle folder")
    parser.add_argument("--from", dest="source", default="bundles/shapes",
                        help="init: the bundle whose weights seed the run")
    parser.add_argument("--decoder-only", action="store_true",
                        help="vae: fine-tune the decoder of the seeded VAE; encoder frozen")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--unet-channels", default=None,
                        help="drafter: UNet channels per level, e.g. 32,64,64 (default 32,64)")
    parser.add_argument("--high-noise-gamma", type=float, default=None,
                        help="drafter: clip of the 1/SNR epsilon-loss weight (default 1: plain loss)")
    parser.add_argument("--box-mask", action="store_true",
                        help="drafter: box-masked GLIGEN fusers (each object attends only to "
                             "its box)")
    parser.add_argument("--caption-only-drop", type=float, default=None,
                        help="drafter: share of grounded samples trained without their caption "
                             "(default 0)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes, for smoke tests")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    return parser


def stage_configs(tiny: bool) -> dict:
    """The config of every stage; ``tiny`` shrinks models and batches to seconds per step."""
    from t2i_training.shapes.clip_train import ClipTrainConfig
    from t2i_training.shapes.diffusion import UNetSizes
    from t2i_training.shapes.drafter_train import DrafterTrainConfig
    from t2i_training.shapes.refiner_train import RefinerTrainConfig
    from t2i_training.shapes.vae_train import VaeTrainConfig

    if not tiny:
        return {"clip": ClipTrainConfig(), "vae": VaeTrainConfig(),
                "drafter": DrafterTrainConfig(), "refiner": RefinerTrainConfig()}
    return {
        "clip": ClipTrainConfig(batch_size=4, vision_hidden=32, vision_layers=1, text_hidden=32,
                                text_layers=1, projection_dim=32, warmup=1),
        "vae": VaeTrainConfig(batch_size=2, channels=(8, 8, 8), calibration_images=4, warmup=1),
        "drafter": DrafterTrainConfig(batch_size=2, unet=UNetSizes(channels=(8, 16), head_dim=8),
                                      warmup=1),
        "refiner": RefinerTrainConfig(batch_size=2, warmup=1),
    }


def run_stage(stage: str, run_dir: Path, steps: int | None, minutes: float | None,
              tiny: bool = False, progress: bool = True, decoder_only: bool = False,
              unet_channels: tuple[int, ...] | None = None,
              high_noise_gamma: float | None = None, box_mask: bool = False,
              caption_only_drop: float | None = None) -> dict:
    """Train one stage; returns its summary."""
    from t2i_training.shapes.clip_train import train_clip
    from t2i_training.shapes.drafter_train import train_drafter
    from t2i_training.shapes.loop import LoopConfig
    from t2i_training.shapes.refiner_train import train_refiner
    from t2i_training.shapes.vae_train import train_vae

    trainers = {"clip": train_clip, "vae": train_vae, "drafter": train_drafter,
                "refiner": train_refiner}
    loop = LoopConfig(steps=steps or DEFAULT_STEPS[stage], minutes=minutes,
                      checkpoint_every=CHECKPOINT_EVERY[stage], progress=progress,
                      log_every=5 if tiny else 25)
    cfg = stage_configs(tiny)[stage]
    if decoder_only:
        if stage != "vae":
            raise ValueError("--decoder-only applies to the vae stage only")
        cfg = replace(cfg, decoder_only=True)
    if unet_channels or high_noise_gamma is not None or box_mask or caption_only_drop is not None:
        if stage != "drafter":
            raise ValueError("--unet-channels, --high-noise-gamma, --box-mask and "
                             "--caption-only-drop apply to the drafter only")
        cfg = replace(cfg, box_mask=box_mask)
        if caption_only_drop is not None:
            cfg = replace(cfg, caption_only_drop=caption_only_drop)
        if unet_channels:
            cfg = replace(cfg, unet=replace(cfg.unet, channels=tuple(unet_channels)))
        if high_noise_gamma is not None:
            cfg = replace(cfg, high_noise_gamma=high_noise_gamma)
    return trainers[stage](run_dir, loop, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.decoder_only and args.stage != "vae":
        parser.error("--decoder-only applies to the vae stage only")
    if args.high_noise_gamma is not None and args.stage != "drafter":
        parser.error("--high-noise-gamma applies to the drafter stage only")
    if args.box_mask and args.stage != "drafter":
        parser.error("--box-mask applies to the drafter stage only")
    if args.caption_only_drop is not None and (args.stage != "drafter"
                                               or not 0 <= args.caption_only_drop <= 1):
        parser.error("--caption-only-drop: a number in [0, 1], for the drafter stage only")
    if args.unet_channels is not None:
        if args.stage != "drafter":
            parser.error("--unet-channels applies to the drafter stage only")
        try:
            args.unet_channels = tuple(int(v) for v in args.unet_channels.split(","))
        except ValueError:
            parser.error(f"--unet-channels: expected integers like 32,64,64, got {args.unet_channels!r}")
        if len(args.unet_channels) < 2 or min(args.unet_channels) < 8:
            parser.error("--unet-channels: at least 2 levels of >= 8 channels")
    try:
        return _run(args, argv)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:  # bad run dir / bundle
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args, argv: list[str] | None) -> int:
    import torch

    from t2i_engines.pytorch.device import loading_progress
    from t2i_training.shapes.assemble import assemble_bundle, record_command
    from t2i_training.shapes.warm_start import seed_run_from_bundle

    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    argv_text = ["python -m t2i_training.shapes.cli", *(argv if argv is not None else sys.argv[1:])]
    record_command(run_dir / args.stage, argv_text)
    with loading_progress(False):  # no per-file "Writing model shards" bars
        if args.stage == "init":
            stages = seed_run_from_bundle(args.source, run_dir)
            print(f"seeded {run_dir} from {args.source}: {', '.join(stages)}")
            return 0
        if args.stage == "assemble":
            sizes = assemble_bundle(run_dir, args.out)
            print(f"wrote {args.out}: " + ", ".join(
                f"{r} {v['params'] / 1e6:.2f}M params {v['files_mb']} MiB" for r, v in sizes.items()))
            return 0
        summary = run_stage(args.stage, run_dir, args.steps, args.minutes, args.tiny,
                            progress=not args.quiet, decoder_only=args.decoder_only,
                            unet_channels=args.unet_channels,
                            high_noise_gamma=args.high_noise_gamma, box_mask=args.box_mask,
                            caption_only_drop=args.caption_only_drop)
    print(f"{args.stage}: {summary['steps']} steps, {summary['wall_s'] / 60:.1f} min, "
          f"final loss {summary['final_loss']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
