"""After the last round: merge the adapter into the base, convert it to GGUF (when the
exporter is installed) and assemble a bundle whose rewriter is the trained model."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from t2i_training.config import RunConfig
from t2i_training.policy import merge_adapter


@dataclass
class FinalArtifacts:
    merged_dir: Path  # transformers folder: base + final adapter
    gguf_path: Path | None  # None when t2i_export.gguf is missing or failed
    bundle_dir: Path
    notes: list[str] = field(default_factory=list)


def finalize(config: RunConfig, base_model: Path, adapter_dir: Path, final_dir: Path,
             log: Callable[[str], None] = lambda line: None) -> FinalArtifacts:
    """Write ``final_dir/rewriter`` (merged), ``final_dir/rewriter-f16.gguf`` and the bundle
    (``config.bundle_out`` or ``final_dir/bundle``): the source bundle's other components with
    the trained rewriter in place of (or added as) its ``rewriter``."""
    merged = merge_adapter(base_model, adapter_dir, final_dir / "rewriter")
    notes = []
    gguf_path = _try_gguf(merged, final_dir / "rewriter-f16.gguf", notes)
    bundle_dir = Path(config.bundle_out) if config.bundle_out else final_dir / "bundle"
    bundle_with_rewriter(Path(config.bundle), merged, bundle_dir, asdict(config.rewrite))
    for note in notes:
        log(note)
    return FinalArtifacts(merged, gguf_path, bundle_dir, notes)


def _try_gguf(model_dir: Path, out_path: Path, notes: list[str]) -> Path | None:
    try:
        from t2i_export.gguf.convert import convert_to_gguf
    except ImportError as e:  # the exporter (or its gguf dependency) is not installed
        notes.append(f"GGUF export skipped: {e}")
        return None
    try:
        convert_to_gguf(model_dir, out_path, out_type="f16")
    except Exception as e:  # an architecture the converter does not know: keep the bundle
        notes.append(f"GGUF export failed: {type(e).__name__}: {e}")
        return None
    return out_path


def bundle_with_rewriter(source: Path, rewriter_dir: Path, out_dir: Path,
                          rewrite_options: dict) -> None:
    from t2i_sdk.bundle import component_dir, create_bundle, load_bundle

    manifest = load_bundle(source, verify=False)
    sources, options, dtypes = {}, {}, set()
    for role, entry in manifest.components.items():
        if entry.engine != "torch":
            continue  # compiled engines (onnx, gguf) are re-exported from the new bundle
        sources[role] = component_dir(source, entry)
        options[role] = dict(entry.options)
        dtypes.add(entry.dtype)
    sources["rewriter"] = rewriter_dir
    options["rewriter"] = rewrite_options  # the chat and sampling the policy was trained with
    dtype = dtypes.pop() if len(dtypes) == 1 else "float32"
    create_bundle(out_dir, sources, options=options, dtype=dtype,
                  name=f"{manifest.name}-dpo-rewriter", overwrite=True)
