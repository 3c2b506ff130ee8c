"""Continue training from a shipped bundle instead of from scratch.

``seed_run_from_bundle`` copies a shapes bundle's components into a fresh run dir as the stages'
finals (scorer -> clip, drafter's VAE -> vae, drafter, refiner). A stage that then finds its
``final`` but no checkpoint starts from those weights (``warm_start_unet``), so a later session
can keep training what the repository ships even after the run dir that made it is gone. A
drafter configured with more UNet levels than the shipped one keeps every shipped tensor and
starts only the new levels fresh (``grown_unet_state``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

# run-dir stage -> the bundle folder that holds what that stage's final would
BUNDLE_SOURCES = {"clip": "scorer", "vae": "drafter/vae", "drafter": "drafter",
                  "refiner": "refiner"}

SEED_HISTORY = "SEED_TRAINING.md"


def seed_run_from_bundle(bundle_dir: str | Path, run_dir: str | Path) -> list[str]:
    """Copy ``bundle_dir``'s components to ``run_dir/<stage>/final``; refuses to overwrite a
    stage that already has a final or checkpoints. Returns the stages seeded."""
    bundle_dir, run_dir = Path(bundle_dir), Path(run_dir)
    if not (bundle_dir / "bundle.json").is_file():
        raise FileNotFoundError(f"{bundle_dir}: no bundle.json (not a bundle)")
    for stage, source in BUNDLE_SOURCES.items():
        if not (bundle_dir / source).is_dir():
            raise FileNotFoundError(f"{bundle_dir / source}: missing, cannot seed {stage}")
        if (run_dir / stage / "final").exists() or (run_dir / stage / "checkpoints").exists():
            raise FileExistsError(f"{run_dir / stage}: already trained; seed a new run dir")
    history = bundle_dir / "TRAINING.md"  # how the seed was trained; assemble carries it on
    if history.is_file():
        (run_dir / "init").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(history, run_dir / "init" / SEED_HISTORY)
    for stage, source in BUNDLE_SOURCES.items():
        final = run_dir / stage / "final"
        tmp = final.with_name(".final.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(bundle_dir / source, tmp)
        tmp.rename(final)
    return list(BUNDLE_SOURCES)


def warm_start_unet(stage_dir: Path, modules: list) -> bool:
    """Load ``stage_dir/final/unet`` into every module of ``modules`` when the stage has a final
    but no checkpoint (a seeded run); returns whether it did. A checkpoint, when present, is
    loaded afterwards by the loop and wins."""
    from safetensors.torch import load_file

    from t2i_training.shapes.checkpoints import latest_checkpoint

    weights = stage_dir / "final" / "unet" / "diffusion_pytorch_model.safetensors"
    if latest_checkpoint(stage_dir) is not None or not weights.is_file():
        return False
    state = load_file(weights)
    for module in modules:
        config = getattr(module, "config", None)
        if config is not None and len(config.block_out_channels) > unet_levels(state):
            grown, new_keys = grown_unet_state(state, module)
            module.load_state_dict(grown)
            print(f"warm start: the UNet gained levels; {len(new_keys)} of {len(grown)} "
                  "tensors start fresh")
        else:
            module.load_state_dict(state)
    return True


def unet_levels(state: dict) -> int:
    """Resolution levels of a saved ``UNet2DConditionModel`` (its number of down blocks)."""
    return 1 + max(int(k.split(".")[1]) for k in state if k.startswith("down_blocks."))


def grown_unet_state(state: dict, unet) -> tuple[dict, list[str]]:
    """``state`` of a UNet with fewer levels, laid into ``unet``'s (more levels, same channels
    at the old levels): down blocks and the mid block keep their indices, up block i becomes
    up block i + (levels added), since new levels join at the bottom. Every tensor of ``unet``
    that the old model lacks (or has in another shape) keeps its fresh initialisation; returns
    (full state dict, those keys). Refuses a state of which less than half fits."""
    import re

    target = unet.state_dict()
    old_levels = unet_levels(state)
    added = len(unet.config.block_out_channels) - old_levels
    renamed = {re.sub(r"^up_blocks\.(\d+)\.", lambda m: f"up_blocks.{int(m.group(1)) + added}.", k): v
               for k, v in state.items()}
    kept = {k: v for k, v in renamed.items() if k in target and target[k].shape == v.shape}
    if len(kept) < len(state) // 2:
        raise ValueError("the saved UNet does not fit the configured one; start a new run dir")
    return {**target, **kept}, sorted(set(target) - set(kept))


def replace_vae(pipeline_dir: Path, vae_dir: Path) -> None:
    """Swap ``pipeline_dir/vae`` for the files of ``vae_dir`` (the run's last VAE), atomically
    enough for a build step: copy beside, then rename over."""
    target = pipeline_dir / "vae"
    tmp = pipeline_dir / ".vae.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(vae_dir, tmp)
    old = pipeline_dir / ".vae.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
