"""Build a bundle from local ``save_pretrained`` folders or hub ids, all-or-nothing."""
from __future__ import annotations

import json
import re
import shutil
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2i_sdk.bundle.atomic import atomic_directory
from t2i_sdk.bundle.hashing import SKIPPED_DIRS, hash_tree, list_files
from t2i_sdk.bundle.manifest import (OPTIONAL_ROLES, REQUIRED_ROLES, ROLE_KIND, ROLES,
                                     SCHEMA_VERSION, BundleManifest, ComponentEntry,
                                     write_manifest)
from t2i_sdk.bundle.options import check_options
from t2i_sdk.errors import BundleError

TORCH_DTYPES = ("float32", "float16", "bfloat16")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # unpickling can run code
# Hub downloads fetch only formats that cannot run code; sentencepiece ``*.model`` and chat
# template ``*.jinja`` files are tokenizer data.
HUB_ALLOW_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.model", "*.jinja"]
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_PIPELINE_KINDS = {"StableDiffusionGLIGENPipeline": "gligen",
                   "StableDiffusionPipeline": "img2img",
                   "StableDiffusionXLPipeline": "img2img"}


@dataclass(frozen=True)
class _Source:
    role: str
    local: Path | None  # a folder on disk, or None for a hub download
    hub_id: str | None


def detect_kind(src_dir: str | Path) -> str:
    """Kind of a native model folder: "gligen", "img2img", "clip" or "causal-lm".

    Diffusers pipelines are told apart by ``model_index.json`` ``_class_name``, transformers
    models by ``config.json`` ``architectures``. Raises ``BundleError`` when neither says.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise BundleError(f"{src}: not a directory")
    index, config = src / "model_index.json", src / "config.json"
    if index.is_file():
        cls = _read_json_object(index).get("_class_name")
        kind = _PIPELINE_KINDS.get(cls) or (
            "img2img" if isinstance(cls, str) and cls.endswith("Img2ImgPipeline") else None)
        if kind is None:
            raise BundleError(f"{index}: unsupported pipeline _class_name {cls!r} (supported: "
                              f"{', '.join(_PIPELINE_KINDS)}, *Img2ImgPipeline)")
        return kind
    if config.is_file():
        archs = _read_json_object(config).get("architectures") or []
        archs = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
        if "CLIPModel" in archs:
            return "clip"
        if any(a.endswith("ForCausalLM") for a in archs):
            return "causal-lm"
        raise BundleError(f"{config}: unsupported architectures {archs} "
                          f"(supported: CLIPModel, *ForCausalLM)")
    raise BundleError(f"{src}: cannot tell what model this is: no model_index.json (diffusers) "
                      f"or config.json (transformers)")


def create_bundle(out_dir: str | Path, sources: dict[str, str | Path], *,
                  options: dict[str, dict] | None = None, dtype: str = "float32",
                  name: str | None = None, overwrite: bool = False,
                  progress: bool = False) -> BundleManifest:
    """Write a bundle at ``out_dir`` from ``{role: local folder or hub id "org/name"}``.

    Everything that can be checked without copying is checked first (roles, options, dtype,
    local sources' kinds and pickles). The bundle is assembled in a hidden temp folder and
    renamed to ``out_dir`` only when complete. Pickled weights (``*.bin``, ``*.pt``, ...) are
    skipped with a warning when safetensors sit beside them, refused otherwise; hub downloads
    fetch only ``HUB_ALLOW_PATTERNS``. ``options[role]`` is stored verbatim; it must be JSON-able
    and use only the keys and types ``t2i_sdk.bundle.options`` lists for the role.
    """
    out_dir = Path(out_dir)
    options = options or {}
    resolved = [_resolve_source(role, src) for role, src in _check_roles(sources).items()]
    _check_options(options, sources)
    if dtype not in TORCH_DTYPES:
        raise BundleError(f"dtype {dtype!r} is not supported "
                          f"(use one of {', '.join(TORCH_DTYPES)})")
    skips = {}
    for src in resolved:
        if src.local is not None:
            _check_overlap(out_dir, src)
            _check_kind(src.role, src.local)
            skips[src.role] = _pickles_to_skip(src.role, src.local)
    components = {}
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for src in resolved:
            dest = tmp / src.role
            if src.local is not None:
                _copy_component(src.local, dest, skips[src.role])
            else:
                _download_component(src, dest)
            components[src.role] = ComponentEntry(
                role=src.role, kind=ROLE_KIND[src.role], engine="torch", path=src.role,
                dtype=dtype, files=hash_tree(dest, progress=progress),
                options=options.get(src.role, {}))
        manifest = BundleManifest(SCHEMA_VERSION, name or out_dir.name, components,
                                  created_by=_created_by())
        write_manifest(tmp, manifest)
    return manifest


def _check_roles(sources: dict) -> dict:
    for role in sources:
        if role not in ROLES:
            raise BundleError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    for role in REQUIRED_ROLES:
        if role not in sources:
            raise BundleError(f"missing required role {role!r}: a bundle needs "
                              f"{' and '.join(REQUIRED_ROLES)} "
                              f"(optional: {', '.join(OPTIONAL_ROLES)})")
    # a fixed order keeps manifests and error reports deterministic
    return {role: sources[role] for role in ROLES if role in sources}


def _check_options(options: dict, sources: dict) -> None:
    for role, opts in options.items():
        if role not in sources:
            raise BundleError(f"options given for role {role!r}, which has no source")
        if not isinstance(opts, dict):
            raise BundleError(f"options for {role} must be a dict, got {type(opts).__name__}")
        try:
            json.dumps(opts, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise BundleError(f"options for {role} are not JSON-able: {e}") from None
        check_options(role, opts, "bundle create")


def _resolve_source(role: str, src: str | Path) -> _Source:
    path = Path(src)
    if isinstance(src, Path) or path.exists():
        if not path.is_dir():
            raise BundleError(f"source for {role}: {path} is not a directory")
        return _Source(role, path, None)
    if isinstance(src, str) and _HUB_ID.fullmatch(src) and ".." not in src:
        return _Source(role, None, src)
    raise BundleError(f"source for {role}: {src!r} is neither a local folder nor a hub id "
                      f"'org/name'")


def _check_overlap(out_dir: Path, src: _Source) -> None:
    out, local = out_dir.resolve(), src.local.resolve()
    if out.is_relative_to(local) or local.is_relative_to(out):
        raise BundleError(f"output {out_dir} overlaps the {src.role} source {src.local}; "
                          f"write the bundle somewhere else")


def _check_kind(role: str, src_dir: Path) -> None:
    kind = detect_kind(src_dir)
    if kind != ROLE_KIND[role]:
        raise BundleError(f"{src_dir}: is a {kind!r} model but the {role} must be "
                          f"{ROLE_KIND[role]!r}")


def _pickles_to_skip(role: str, src_dir: Path) -> set[str]:
    """Relpaths of pickled weights that have safetensors beside them; refuse lone pickles."""
    by_dir = defaultdict(list)
    for rel in list_files(src_dir):
        by_dir[PurePosixPath(rel).parent].append(rel)
    if not any(rel.endswith(".safetensors") for rels in by_dir.values() for rel in rels):
        raise BundleError(f"{src_dir}: {role} has no *.safetensors weights "
                          f"(pickled weights are never loaded; re-save with safe_serialization)")
    skip = set()
    for rels in by_dir.values():
        pickles = [r for r in rels if r.lower().endswith(PICKLE_SUFFIXES)]
        if pickles and not any(r.endswith(".safetensors") for r in rels):
            raise BundleError(f"{src_dir / pickles[0]}: pickled weights without a safetensors "
                              f"copy beside them; re-save with safe_serialization=True")
        skip.update(pickles)
    if skip:
        warnings.warn(f"{role}: skipping {len(skip)} pickled weight file(s) in {src_dir} "
                      f"(safetensors beside them are used): {', '.join(sorted(skip))}",
                      UserWarning, stacklevel=3)
    return skip


def _copy_component(src_dir: Path, dest: Path, skip: set[str]) -> None:
    def ignore(dirpath: str, names: list[str]) -> set[str]:
        rel_dir = Path(dirpath).relative_to(src_dir)
        return {n for n in names
                if n in SKIPPED_DIRS or (rel_dir / n).as_posix() in skip}

    shutil.copytree(src_dir, dest, ignore=ignore)


def _download_component(src: _Source, dest: Path) -> None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BundleError(f"{src.role}: hub id {src.hub_id!r} needs huggingface_hub "
                          f"(pip install 't2i-sdk[torch]'), or pass a local folder") from None
    try:
        snapshot_download(src.hub_id, local_dir=dest, allow_patterns=HUB_ALLOW_PATTERNS)
    except Exception as e:  # network, auth, missing repo: all one line for the user
        detail = (str(e).strip().splitlines() or [""])[0]
        raise BundleError(f"{src.role}: download of {src.hub_id!r} failed: "
                          f"{type(e).__name__}: {detail}") from e
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # hub_download bookkeeping, not model
    _check_kind(src.role, dest)
    for rel in _pickles_to_skip(src.role, dest):
        (dest / rel).unlink()


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: unreadable JSON: {e}") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return data


def _created_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"t2i-sdk {version('t2i-sdk')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "t2i-sdk"
