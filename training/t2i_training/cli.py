"""t2i-train: iterative DPO for the rewriter (dpo), adapter win rates (eval), GGUF import.

import-gguf turns a llama.cpp GGUF into a trainable transformers folder.

Bad input: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from t2i_engines.errors import EngineError
from t2i_sdk.errors import InputError, T2IError

PHASE_NAMES = {"sample": "sample rewrites", "render": "render", "judge": "judge pairs",
               "dpo": "DPO steps", "eval": "held-out eval"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2i-train", description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dpo = sub.add_parser("dpo", help="run (or resume) iterative DPO from a YAML config")
    dpo.add_argument("--config", required=True, help="run.yaml (see t2i_training.config)")
    dpo.add_argument("--run-dir", help="override run_dir of the config")
    dpo.add_argument("--rounds", type=int, help="override rounds of the config")
    dpo.add_argument("--no-export", action="store_true",
                     help="skip merging, GGUF conversion and the final bundle")
    dpo.set_defaults(run=cmd_dpo)

    ev = sub.add_parser("eval", help="judge win rate of an adapter vs its base model and vs "
                                     "the original prompts")
    ev.add_argument("--adapter", required=True, help="a round's adapter/ folder")
    ev.add_argument("--prompts", required=True, help=".txt / .jsonl file or builtin:NAME")
    ev.add_argument("--judge", default="programmatic:keeps_objects_adds_color",
                    help="programmatic:FUNCTION | shapes | vlm:MODEL_DIR | "
                         "import:module:factory")
    ev.add_argument("--base-model", help="default: the base recorded in the adapter")
    ev.add_argument("--bundle", help="T2I bundle to render with (default: no rendering, for "
                                     "judges that ignore images)")
    ev.add_argument("--steps", type=int, default=20, help="drafter steps per render")
    ev.add_argument("--dimensions", nargs="+", default=None)
    ev.add_argument("--temperature", type=float, default=1.0)
    ev.add_argument("--max-new-tokens", type=int, default=160)
    ev.add_argument("--quantization", default="none", choices=("auto", "nf4", "none"))
    ev.add_argument("--device", default="auto")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", dest="json_out", help="write the win rates and records here")
    ev.set_defaults(run=cmd_eval)

    imp = sub.add_parser("import-gguf", help="turn a llama.cpp GGUF (an architecture transformers "
                                             "can load) into a trainable transformers folder")
    imp.add_argument("gguf", metavar="MODEL.gguf")
    imp.add_argument("out_dir", metavar="OUT_DIR")
    imp.add_argument("--sha256", help="refuse the file unless its sha256 is this (hex)")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    imp.set_defaults(run=cmd_import_gguf)
    return parser


def _quiet_libraries() -> None:
    """Deprecation and kernel notices from torch/transformers/TRL/bitsandbytes fill the screen
    every step and say nothing a user of this command can act on; the round summaries do."""
    import logging
    import warnings

    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category,
                                module=r"(torch|transformers|trl|peft|bitsandbytes|accelerate|diffusers)\b")
    for name in ("transformers", "diffusers", "trl", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return args.run(args) or 0
    except (T2IError, EngineError) as exc:  # bad input, bad model files: one line
        print(f"t2i-train: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"t2i-train: error: {exc.name or exc} is missing; install the training extra: "
              f"pip install 't2i-sdk[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("t2i-train: interrupted (finished units are saved; run again to resume)",
              file=sys.stderr)
        return 130


def cmd_dpo(args) -> int:
    from rich.console import Console

    from t2i_training import report
    from t2i_training.config import load_config
    from t2i_training.finalize import finalize
    from t2i_training.judges.http_judge import JudgeServerError
    from t2i_training.rounds import resolve_base_model, train
    from t2i_training.run_dir import RunDir

    config = load_config(args.config, run_dir=args.run_dir, rounds=args.rounds)
    out, err = Console(), Console(stderr=True, quiet=args.quiet)

    def on_round(rep: dict) -> None:
        out.print(report.round_table(rep))
        out.print(f"round {rep['round']}: {rep['pairs']} pairs, DPO loss "
                  f"{report._num(rep['dpo'].get('loss'))}, median rewrite "
                  f"{rep['prompt_tokens']['sampled'].get('p50', '-')} tokens")

    try:
        with _phase_bars(err) as progress:
            reports = train(config, progress=progress, log=err.print, on_round=on_round)
    except JudgeServerError as exc:
        raise JudgeServerError(f"{exc} (finished work is saved in {config.run_dir}; fix the "
                               f"judge and run the same command again to resume)") from None
    out.print(report.summary_table(reports))
    if not args.no_export:
        run = RunDir(config.run_dir)
        with err.status("merging the adapter, converting to GGUF, writing the bundle"):
            final = finalize(config, resolve_base_model(config),
                             run.adapter_after(config.rounds), run.final_dir, log=err.print)
        out.print(f"trained rewriter: {final.merged_dir}")
        out.print(f"gguf: {final.gguf_path or 'skipped'}")
        out.print(f"bundle: {final.bundle_dir}")
    return 0


def cmd_eval(args) -> int:
    from rich.console import Console

    from t2i_training import report
    from t2i_training.config import DEFAULT_DIMENSIONS, JudgeSpec
    from t2i_training.data import load_prompts, prompt_specs
    from t2i_training.evaluation import compare_with_base
    from t2i_training.policy import load_policy
    from t2i_training.rounds import BlankRenderer, PipelineRenderer, build_judge, check_judge

    adapter = Path(args.adapter)
    base = Path(args.base_model) if args.base_model else _adapter_base(adapter)
    prompts = load_prompts(args.prompts)
    judge = build_judge(JudgeSpec.parse(args.judge), prompt_specs(args.prompts))
    check_judge(judge)  # before the policy loads
    renderer = (PipelineRenderer(args.bundle, steps=args.steps, device=args.device)
                if args.bundle else BlankRenderer())
    policy = load_policy(base, adapter_dir=adapter, quantization=args.quantization,
                         device=args.device)
    dims = tuple(args.dimensions or DEFAULT_DIMENSIONS)
    err = Console(stderr=True, quiet=args.quiet)
    try:
        with _phase_bars(err) as progress:
            result = compare_with_base(
                policy, prompts, judge, renderer, dims, seed=args.seed,
                temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                on_prompt=lambda d, n: progress("eval", d, n))
    finally:
        if isinstance(renderer, PipelineRenderer):
            renderer.close()  # the bundle's models, llama.cpp's included
    rates = result["win_rate"]
    fake = {"round": "eval", "eval_prompts": len(prompts),
            "win_rate": {"vs_previous": rates["vs_base"], "vs_original": rates["vs_original"]}}
    table = report.round_table(fake)
    table.title = f"{adapter}: win rate on {len(prompts)} prompts (0.5 = draw)"
    table.columns[1].header = "vs base"
    Console().print(table)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_import_gguf(args) -> int:
    from rich.console import Console

    from t2i_training.gguf_import import import_gguf

    result = import_gguf(args.gguf, args.out_dir, expected_sha256=args.sha256,
                         overwrite=args.overwrite, console=Console(stderr=True, quiet=args.quiet))
    print(f"model folder: {result.out_dir}")
    print(f"parameters: {result.parameters:,}")
    print(f"sha256: {result.sha256}")
    return 0


def _adapter_base(adapter: Path) -> Path:
    path = adapter / "adapter_config.json"
    if not path.is_file():
        raise InputError(f"{adapter}: not a LoRA adapter folder (adapter_config.json missing)")
    base = json.loads(path.read_text()).get("base_model_name_or_path")
    if not base or not Path(base).is_dir():
        raise InputError(f"{adapter}: its base model {base!r} is not a local folder; "
                         f"pass --base-model")
    return Path(base)


@contextmanager
def _phase_bars(console):
    """Yield ``progress(phase, done, total)`` drawing one rich bar per phase."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    tasks = {}
    with Progress(*columns, console=console, transient=False) as bar:
        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks or bar.tasks[tasks[phase]].finished and done < total:
                tasks[phase] = bar.add_task(PHASE_NAMES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress


if __name__ == "__main__":
    sys.exit(main())
