"""t2i-export: compile bundles to ONNX / TensorRT engines and their LLMs to GGUF.

Bad input: one line on stderr, exit 2. A parity check above tolerance: exit 1. Ctrl-C: 130.
An existing output is replaced only with ``--force``, except that ``onnx`` / ``tensorrt``
re-runs update their own earlier output (skipping unchanged components).
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from t2i_engines.errors import EngineError
from t2i_engines.onnxruntime.export_format import MANIFEST_NAME
from t2i_export.targets import check_bundle_target, check_file_target, check_folder_target
from t2i_sdk.cli.one_line import one_line
from t2i_sdk.errors import T2IError


@contextmanager
def _progress(quiet: bool, title: str):
    """A spinner naming the current step; yields ``update(step_name)``. None when ``quiet`` or
    when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield lambda *a, **k: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(title)
        yield lambda step, *a, **k: bar.update(task, description=f"{title}: {step}")


def _log(quiet):
    return (lambda *a: None) if quiet else (lambda msg: print(msg, file=sys.stderr))


def _onnx_options(args):
    from t2i_export.onnx_step import OnnxOptions
    return OnnxOptions(fp16=args.fp16, int8=args.int8, optimize=not args.no_optimize,
                       int8_unet=args.int8_unet)


def cmd_onnx(args) -> int:
    from t2i_export.onnx_step import export_bundle_onnx
    out = check_folder_target(args.out, force=args.force)
    with _progress(args.quiet, "onnx") as update:
        export_bundle_onnx(Path(args.bundle), out, _onnx_options(args), log=_log(args.quiet),
                           progress=update)
    return 0


def cmd_tensorrt(args) -> int:
    from t2i_export.tensorrt_step import build_component_tensorrt, check_tensorrt
    check_tensorrt()  # before any work: nothing is written without TensorRT and a GPU
    src, out = Path(args.src), check_folder_target(args.out, force=args.force)
    with _progress(args.quiet, "tensorrt") as update:
        if (src / "bundle.json").exists():
            from t2i_export.onnx_step import OnnxOptions, export_bundle_onnx
            onnx_dirs = export_bundle_onnx(src, out, OnnxOptions(fp16=True), log=_log(args.quiet),
                                           progress=update)
        else:
            onnx_dirs = {p.name: p for p in src.iterdir() if (p / MANIFEST_NAME).exists()}
        for role, onnx_dir in onnx_dirs.items():
            build_component_tensorrt(onnx_dir, out / role, timing_cache=out / "timing.cache",
                                     progress=update)
    return 0


def cmd_gguf(args) -> int:
    from t2i_export.gguf.convert import convert_to_gguf
    out = check_file_target(args.out, force=args.force)
    with _progress(args.quiet, "gguf") as update:
        convert_to_gguf(Path(args.model_dir), out, out_type=args.type,
                        adapter_dir=Path(args.adapter) if args.adapter else None, progress=update)
    _log(args.quiet)(f"wrote {args.out}")
    return 0


def _print_rows(rows, quiet) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table("component", "engine", "dtype", "metric", "max abs", "error", "tolerance", "ok")
    for r in rows:
        table.add_row(r.role, r.engine, r.dtype, r.metric, f"{r.max_abs:.3g}", f"{r.error:.3g}",
                      f"{r.tolerance:.3g}", "yes" if r.passed else "NO")
    if not quiet:
        Console(stderr=True).print(table)
    failed = [r.role for r in rows if not r.passed]
    if failed:
        print(f"t2i-export: parity above tolerance for {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_bundle(args) -> int:
    from t2i_export.bundle_export import export_bundle
    out = check_bundle_target(args.out, force=args.force)
    with _progress(args.quiet, "bundle") as update:
        rows = export_bundle(Path(args.bundle), out, engines=args.engines, llm=args.llm,
                             onnx_opts=_onnx_options(args), overwrite=args.force,
                             log=_log(args.quiet), progress=update)
    return _print_rows(rows, args.quiet)


def cmd_verify(args) -> int:
    from t2i_export.verify import verify_bundles
    with _progress(args.quiet, "verify") as update:
        rows = verify_bundles(Path(args.src), Path(args.exported), seed=args.seed, progress=update)
    return _print_rows(rows, args.quiet)


def _onnx_flags(p) -> None:
    p.add_argument("--fp16", action="store_true", help="fp16 weights/activations (fp32 IO)")
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of text encoders and CLIP")
    p.add_argument("--int8-unet", action="store_true",
                   help="static int8 (QDQ) drafter UNet for the CPU provider, calibrated on UNet "
                        "inputs recorded from fp32 drafts of shapes-world prompts outside the "
                        "evaluation suite; not with --fp16")
    p.add_argument("--no-optimize", action="store_true", help="skip onnxruntime graph optimisation")


_FOLDER_FORCE = "write into an existing folder that holds no earlier export"


def _force_flag(p, help_text: str, *aliases: str) -> None:
    p.add_argument("--force", *aliases, dest="force", action="store_true", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2i-export", description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", "-q", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("onnx", help="export a bundle's UNets, text encoders, VAEs and CLIP to ONNX")
    p.add_argument("bundle"), p.add_argument("out"), _onnx_flags(p), _force_flag(p, _FOLDER_FORCE)
    p.set_defaults(run=cmd_onnx)
    p = sub.add_parser("tensorrt", help="TensorRT engines from a bundle or an `onnx` output folder")
    p.add_argument("src"), p.add_argument("out"), _force_flag(p, _FOLDER_FORCE)
    p.set_defaults(run=cmd_tensorrt)
    p = sub.add_parser("gguf", help="a Llama/Qwen2 causal LM (+ LoRA adapter) to GGUF")
    p.add_argument("model_dir"), p.add_argument("out")
    p.add_argument("--adapter", help="LoRA adapter folder, merged first")
    p.add_argument("--type", default="f16",
                   choices=("f32", "f16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k"),
                   help="q4_k/q5_k/q6_k (Q4_K_M, Q5_K_M, Q6_K) run llama.cpp's quantizer on an "
                        "f16 export and need the `llama` extra (default: f16)")
    _force_flag(p, "replace an existing output file")
    p.set_defaults(run=cmd_gguf)
    p = sub.add_parser("bundle", help="a new bundle on compiled engines, with a parity report")
    p.add_argument("bundle"), p.add_argument("out")
    p.add_argument("--engines", default="onnx", choices=("onnx", "tensorrt", "torch"))
    p.add_argument("--llm", default=None, help="gguf:<type> for the rewriter/planner, e.g. gguf:q8_0")
    _force_flag(p, "replace an existing output bundle (components whose source and options are "
                   "unchanged are reused)", "--overwrite")
    _onnx_flags(p), p.set_defaults(run=cmd_bundle)
    p = sub.add_parser("verify", help="compare a source and an exported bundle per component")
    p.add_argument("src"), p.add_argument("exported"), p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (T2IError, EngineError, ValueError, OSError) as exc:  # OSError: unreadable input,
        print(f"t2i-export: error: {one_line(exc)}", file=sys.stderr)  # full disk, ...
        return 2
    except KeyboardInterrupt:
        print("t2i-export: interrupted; nothing half-written was left in place", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
