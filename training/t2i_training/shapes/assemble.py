"""Assemble the shapes bundle from a run's stage finals, and write its TRAINING.md."""
from __future__ import annotations

import json
from pathlib import Path

from t2i_training.shapes.warm_start import SEED_HISTORY, replace_vae

MAX_BUNDLE_MB = 30.0
BUNDLE_OPTIONS = {
    # square boxes no larger than the world's objects (WorldConfig.max_side), as in training;
    # grounding at every step (GLIGEN's 0.3 cost 0.22 accuracy here: grounding_ablation.json)
    # regional prompts: each box's cross-attention reads "a photo of <its phrase>" (the captions'
    # own dialect; the bare phrase was worse), the rest of the image the caption: colour
    # attribution 0.56 -> 1.00, overall 0.81 -> 0.96 on the 96-prompt suite
    # (benchmarks/results/shapes/regional_prompts_ablation.json)
    "drafter": {"guidance_scale": 4.0, "height": 64, "width": 64, "gligen_beta": 1.0,
                "layout": {"max_side": 0.34, "max_aspect": 1.0},
                "regional_prompts": {"template": "a photo of {}", "background": "caption"}},
    # refinement rounds measured no gain on the box-masked drafts (0.891 -> 0.865 at 8 drafts,
    # benchmarks/results/shapes/table.md): the budget planner spends on drafts instead
    "refiner": {"guidance_scale": 0.0, "refine_strength": 0.4, "refine_steps": 2,
                "round_gains": [0.0]},
}
STAGES = ("clip", "vae", "drafter", "refiner")
SOURCES = {"drafter": "drafter", "scorer": "clip", "refiner": "refiner"}  # role -> stage
FINDINGS = "FINDINGS.md"  # optional notes in the run dir, carried into TRAINING.md


def assemble_bundle(run_dir: str | Path, out_dir: str | Path, *, name: str = "shapes",
                    max_mb: float = MAX_BUNDLE_MB) -> dict:
    """``create_bundle`` from ``run_dir/{drafter,clip,refiner}/final`` into ``out_dir``
    (replacing it; both diffusion models get ``run_dir/vae/final``, the run's last VAE), then ``out_dir/TRAINING.md``. Raises ``ValueError`` when the bundle's
    files exceed ``max_mb`` MiB. Returns ``{role: {"files_mb", "params"}}``."""
    from t2i_sdk.bundle.create import create_bundle

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    sources = {role: run_dir / stage / "final" for role, stage in SOURCES.items()}
    for role, src in sources.items():
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: the {SOURCES[role]} stage has not finished")
    if (run_dir / "vae" / "final").is_dir():  # a decoder-only fine-tune may postdate the UNets
        for role in ("drafter", "refiner"):
            replace_vae(sources[role], run_dir / "vae" / "final")
    create_bundle(out_dir, sources, options=BUNDLE_OPTIONS, name=name, overwrite=True)
    sizes = {role: {"files_mb": round(_mb(out_dir / role), 2),
                    "params": _safetensors_params(out_dir / role)} for role in sources}
    total = _mb(out_dir)
    if total > max_mb:
        raise ValueError(f"bundle {out_dir} is {total:.1f} MiB, over the {max_mb} MiB limit")
    (out_dir / "TRAINING.md").write_text(training_report(run_dir, sizes, total), encoding="utf-8")
    return sizes


def training_report(run_dir: Path, sizes: dict, total_mb: float) -> str:
    """Markdown: the commands run, per stage its steps, wall time and final loss, then the run
    dir's FINDINGS.md if it has one, then the seed bundle's history."""
    lines = ["# How the `shapes` bundle was trained", "",
             ("Continued training of the seed bundle described at the end (`init --from`), "
              if (run_dir / "init" / SEED_HISTORY).is_file() else "Tiny models trained from scratch ") +
             "on `t2i_sdk.shapes.scene_stream` scenes (64x64, "
             "held-out captions never seen) by `t2i_training.shapes`, on a shared 2-core CPU "
             "(torch threads as each command says, other jobs alongside). Every stage is resumable and "
             "deterministic in its seed (batch i of a stage is always the same scenes).", "",
             "## Commands", "", "```"]
    if (run_dir / "commands.txt").is_file():
        lines += _commands(run_dir)
    else:  # a run dir from before the run-level log: per stage
        for stage in ("init", *STAGES, "assemble"):
            lines += _commands(run_dir / stage)
    lines += ["```", "", "## Stages", "",
              "| stage | steps | wall time | final loss (EMA 0.95) | other |",
              "|---|---|---|---|---|"]
    for stage in STAGES:
        s = _summary(run_dir / stage)
        if s is None:
            lines.append(f"| {stage} | - | - | - | not run |")
            continue
        other = {k: v for k, v in s.items()
                 if k not in ("stage", "steps", "wall_s", "final_loss", "config", "finished")}
        lines.append(f"| {stage} | {s['steps']} | {s['wall_s'] / 60:.1f} min | {s['final_loss']} "
                     f"| {', '.join(f'{k} {v}' for k, v in other.items())} |")
    lines += ["", "## Components", "", "| role | params | files |", "|---|---|---|"]
    lines += [f"| {role} | {v['params'] / 1e6:.2f} M | {v['files_mb']} MiB |"
              for role, v in sizes.items()]
    lines += ["", f"Total: {total_mb:.1f} MiB (safetensors + JSON/tokenizer files).", "",
              "Per-stage settings are in `RUN/<stage>/summary.json` (`config`); per-step losses "
              "in `RUN/<stage>/log.jsonl`.", ""]
    findings = run_dir / FINDINGS
    if findings.is_file():  # what the run's ablations showed, written by whoever ran them
        lines += [findings.read_text(encoding="utf-8").strip(), ""]
    seed = run_dir / "init" / SEED_HISTORY
    if seed.is_file():  # this run continued a bundle: keep how that one was made
        earlier = seed.read_text(encoding="utf-8").partition("\n")[2]
        lines += ["## Before this run: how the seed bundle was trained", "",
                  earlier.replace("\n## ", "\n### ").strip(), ""]
    return "\n".join(lines)


def record_command(stage_dir: Path, argv: list[str]) -> None:
    """Append the command line that ran a stage to the stage's and the run's commands.txt
    (TRAINING.md lists the run's, in the order they ran: stages depend on each other)."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    for folder in (stage_dir, stage_dir.parent):
        with open(folder / "commands.txt", "a", encoding="utf-8") as f:
            f.write(" ".join(argv) + "\n")


def _commands(stage_dir: Path) -> list[str]:
    path = stage_dir / "commands.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def _summary(stage_dir: Path) -> dict | None:
    path = stage_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20


def _safetensors_params(folder: Path) -> int:
    """Parameters stored in a component (each model folder's safetensors counted once)."""
    import numpy as np
    from safetensors import safe_open

    total = 0
    for path in folder.rglob("*.safetensors"):
        with safe_open(path, "np") as f:
            for key in f.keys():
                total += int(np.prod(f.get_slice(key).get_shape()))
    return total
