"""Rebuild the shipped rewriter bundle from the pinned base model + the committed LoRA adapter.

    python -m t2i_training.rewriter_bundle --out models/shapes-rewriter [--type q8_0]

The committed ``bundles/rewriter-smollm2/`` holds only what training produced (the LoRA
adapter, a few MB, and ``rewrite.json``: the chat and sampling it was trained with). This
merges the adapter into SmolLM2-135M-Instruct (``make smollm2``), writes a torch bundle = the
shapes bundle + that rewriter, then ``t2i-export bundle --engines torch --llm gguf:TYPE``:
the rewriter runs on llama.cpp inside the Pipeline, the rest stays as shipped. All-or-nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from t2i_sdk.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
ADAPTER_PACKAGE = ROOT / "bundles" / "rewriter-smollm2"  # adapter/ + rewrite.json
SOURCE_BUNDLE = ROOT / "bundles" / "shapes"
REWRITE_OPTIONS = "rewrite.json"


def build_rewriter_bundle(out: Path, *, base_model: Path, package: Path = ADAPTER_PACKAGE,
                          source_bundle: Path = SOURCE_BUNDLE, gguf_type: str = "q8_0") -> Path:
    """Write ``out``: ``source_bundle`` with the merged, GGUF-compiled rewriter."""
    from t2i_export.bundle_export import export_bundle
    from t2i_training.finalize import bundle_with_rewriter
    from t2i_training.policy import merge_adapter

    adapter, options_file = package / "adapter", package / REWRITE_OPTIONS
    for path in (adapter / "adapter_config.json", options_file, base_model / "config.json"):
        if not path.is_file():
            raise InputError(f"{path} is missing")
    options = json.loads(options_file.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="rewriter-bundle-", dir=out.parent) as tmp:
        merged = merge_adapter(base_model, adapter, Path(tmp) / "merged")
        torch_bundle = Path(tmp) / "torch-bundle"
        bundle_with_rewriter(source_bundle, merged, torch_bundle, options)
        export_bundle(torch_bundle, out, engines="torch", llm=f"gguf:{gguf_type}", overwrite=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from t2i_training.pretrained import DEFAULT_OUT

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--base-model", default=str(ROOT / DEFAULT_OUT))
    p.add_argument("--package", default=str(ADAPTER_PACKAGE), help="adapter/ + rewrite.json")
    p.add_argument("--type", default="q8_0", help="GGUF type of the rewriter (q8_0, q4_k, f16)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        build_rewriter_bundle(out, base_model=Path(args.base_model), package=Path(args.package),
                              gguf_type=args.type)
    except InputError as exc:
        print(f"rewriter_bundle: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
