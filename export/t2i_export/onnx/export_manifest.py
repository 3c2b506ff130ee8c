"""The ``onnx_export.json`` manifest each ONNX exporter writes beside its graphs.

Shared by the CLIP, GLIGEN and img2img exporters: reading and atomic writing of the manifest,
the per-graph entry it records, the check that lets a re-export keep a graph whose source
weights and options are unchanged, and the source hashes that check compares.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Defined once beside the engines that read it; importable from here for the exporters.
from t2i_engines.onnxruntime.export_format import MANIFEST_NAME


def read_json(path: Path) -> dict:
    """The JSON document at ``path`` (UTF-8); raises ``OSError`` / ``ValueError``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_manifest(out_dir: Path) -> dict | None:
    """``out_dir/onnx_export.json`` as a dict, or None when absent or unreadable."""
    try:
        return read_json(Path(out_dir) / MANIFEST_NAME)
    except (OSError, ValueError):
        return None


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    """Write ``onnx_export.json`` atomically (temp file + ``os.replace``); returns its path."""
    from t2i_sdk.bundle.atomic import atomic_write_text

    path = Path(out_dir) / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def graph_entry(name: str, inputs: list[str], outputs: list[str], dynamic_axes: dict,
                source_sha256: dict[str, str], options: dict) -> dict:
    """The manifest entry of graph ``name`` (stored at ``<name>/model.onnx``).

    ``dynamic_axes``: ``{tensor: {axis: symbol}}`` (axes become strings, as JSON keys must);
    ``options``: the export options, with ``fp16``, ``int8`` and ``opset`` keys at least;
    ``source_sha256``: hashes of the torch files the graph is built from.
    """
    dtype = "int8" if options["int8"] else "fp16" if options["fp16"] else "fp32"
    return {"path": f"{name}/model.onnx", "inputs": list(inputs), "outputs": list(outputs),
            "dynamic_axes": {k: {str(a): s for a, s in v.items()}
                             for k, v in dynamic_axes.items()},
            "dtype": dtype, "opset": options["opset"], "options": dict(options),
            "source_sha256": dict(source_sha256)}


def is_reusable(old: dict | None, entry: dict, out_dir: Path) -> bool:
    """Whether the previous manifest entry ``old`` was built from the same sources with the
    same options as ``entry`` and its graph file still exists, so it need not be re-exported."""
    return (old is not None and old.get("source_sha256") == entry["source_sha256"]
            and old.get("options") == entry["options"] and (out_dir / old["path"]).is_file())


def files_sha256(src_dir: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """``{file name: sha256}`` of the files directly in ``src_dir`` matching any glob pattern."""
    from t2i_sdk.bundle.hashing import sha256_file

    src_dir = Path(src_dir)
    paths = sorted({p for pattern in patterns for p in src_dir.glob(pattern)})
    return {p.name: sha256_file(p) for p in paths}


def folder_sha256(folder: Path) -> str:
    """One sha256 (hex) over a folder's files (relative path + content), so any change shows."""
    from t2i_sdk.bundle.hashing import hash_tree

    digest = hashlib.sha256()
    for rel, file_sha in sorted(hash_tree(folder).items()):
        digest.update(f"{rel}\0{file_sha}\n".encode())
    return digest.hexdigest()
