"""``bundle.json``: which component plays which role, in which format, with which file hashes.

A bundle is a folder holding ``bundle.json`` and one folder per component in its library's
native format (``save_pretrained`` output). Example::

    {"schema_version": 1, "name": "demo", "created_by": "t2i-sdk 0.1.0",
     "components": {"drafter": {"kind": "gligen", "engine": "torch", "path": "drafter",
                                "dtype": "float16", "files": {"model_index.json": "<sha256>"},
                                "options": {"guidance_scale": 7.5}}, ...}}

The role is the key in ``components``; it is not repeated inside the entry.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from t2i_sdk.bundle.atomic import atomic_write_text
from t2i_sdk.bundle.hashing import resolve_member, verify_files
from t2i_sdk.bundle.options import check_options, short_repr
from t2i_sdk.errors import BundleError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
MANIFEST_NAME = "bundle.json"

REQUIRED_ROLES = ("drafter", "scorer")
OPTIONAL_ROLES = ("refiner", "rewriter", "planner")
ROLES = REQUIRED_ROLES + OPTIONAL_ROLES
ROLE_KIND = {"drafter": "gligen", "scorer": "clip", "refiner": "img2img",
             "rewriter": "causal-lm", "planner": "causal-lm"}
KINDS = ("gligen", "clip", "img2img", "causal-lm")
ENGINES = ("torch", "onnxruntime", "tensorrt", "llama.cpp")  # loaders: t2i_sdk.loading.LOADERS
DTYPES = ("float32", "float16", "bfloat16", "int8", "int4")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ComponentEntry:
    """One model of a bundle. ``files``: relpath inside the component -> sha256 hex."""

    role: str  # one of ROLES
    kind: str  # one of KINDS; must equal ROLE_KIND[role]
    engine: str  # one of ENGINES
    path: str  # POSIX path of the component folder, relative to the bundle
    dtype: str  # one of DTYPES: the precision the weights are loaded in
    files: dict[str, str] = field(hash=False)
    options: dict = field(default_factory=dict, hash=False)  # JSON-able stage settings

    def to_dict(self) -> dict:
        return {"kind": self.kind, "engine": self.engine, "path": self.path,
                "dtype": self.dtype, "files": dict(self.files), "options": self.options}


@dataclass(frozen=True)
class BundleManifest:
    """The parsed ``bundle.json``; ``components`` maps role -> entry."""

    schema_version: int
    name: str
    components: dict[str, ComponentEntry] = field(hash=False)
    created_by: str

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "name": self.name,
                "created_by": self.created_by,
                "components": {r: e.to_dict() for r, e in self.components.items()}}


def read_manifest(bundle_dir: str | Path) -> BundleManifest:
    """Parse and validate ``bundle_dir/bundle.json`` (schema only: files are not touched)."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.exists():
        raise BundleError(f"{bundle_dir}: bundle does not exist")
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: bundle is not a directory")
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST_NAME} (not a bundle, or an unfinished one)")
    return parse_manifest_bytes(path.read_bytes(), path)


def parse_manifest_bytes(raw: bytes, where: Path) -> BundleManifest:
    """The manifest in ``raw`` (the bytes of a ``bundle.json``); ``where`` names it in errors.

    Raises ``BundleError``, and nothing else, for any content that is not a valid manifest.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BundleError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{where}: bad JSON at line {e.lineno} col {e.colno}: {e.msg}") from None
    except RecursionError:
        raise BundleError(f"{where}: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal past Python's digit limit
        raise BundleError(f"{where}: bad JSON: {str(e)[:80]}") from None
    _check_no_surrogates(data, where)
    return _parse_manifest(data, where)


def write_manifest(bundle_dir: str | Path, manifest: BundleManifest) -> None:
    """Write ``bundle.json`` atomically: sorted keys, 2-space indent, trailing newline."""
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)
    atomic_write_text(Path(bundle_dir) / MANIFEST_NAME, text + "\n")


def load_bundle(bundle_dir: str | Path, *, verify: bool = True,
                progress: bool = False) -> BundleManifest:
    """Read ``bundle.json`` and check every component folder and listed file exists.

    ``verify=True`` also hashes every listed file against its sha256 (slow for large weights;
    ``progress`` shows a bar above 256 MiB). Raises ``BundleError`` with one line naming
    what is wrong.
    """
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    for entry in manifest.components.values():
        root = component_dir(bundle_dir, entry)
        if not root.is_dir():
            raise BundleError(f"{root}: {entry.role} folder {entry.path!r} is missing")
        if verify:
            verify_files(root, entry.files, progress=progress)
        else:
            for rel in entry.files:
                if not resolve_member(root, rel).is_file():
                    raise BundleError(f"{root / rel}: listed file is missing")
    return manifest


def component_dir(bundle_dir: str | Path, entry: ComponentEntry) -> Path:
    """The folder of ``entry``; raises ``BundleError`` if it resolves outside the bundle."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / entry.path
    root = bundle_dir.resolve()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise BundleError(f"{path}: {entry.role} path {entry.path!r} resolves outside the "
                          f"bundle (symlink out)")
    return path


def _parse_manifest(data, where: Path) -> BundleManifest:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: top level must be a JSON object")
    version = _field(data, "schema_version", int, where)
    _check_known_fields(data, _MANIFEST_FIELDS, "", where)
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise BundleError(f"{where}: unknown schema_version {version} (this t2i-sdk reads "
                          f"version {supported}; upgrade t2i-sdk or re-create the bundle)")
    name = _field(data, "name", str, where)
    created_by = _field(data, "created_by", str, where)
    raw = _field(data, "components", dict, where)
    for role in raw:
        if role not in ROLES:
            raise BundleError(f"{where}: unknown role {short_repr(role)} in components "
                              f"(roles: {', '.join(ROLES)})")
    for role in REQUIRED_ROLES:
        if role not in raw:
            raise BundleError(f"{where}: missing required role {role!r} in components")
    components = {role: _parse_entry(role, body, where) for role, body in raw.items()}
    return BundleManifest(version, name, components, created_by)


def _parse_entry(role: str, body, where: Path) -> ComponentEntry:
    ctx = f"components.{role}"
    if not isinstance(body, dict):
        raise BundleError(f"{where}: {ctx} must be a JSON object")
    _check_known_fields(body, _ENTRY_FIELDS, ctx, where)
    kind = _choice(body, "kind", KINDS, ctx, where)
    if kind != ROLE_KIND[role]:
        raise BundleError(f"{where}: {ctx}.kind is {kind!r} but a {role} must be "
                          f"{ROLE_KIND[role]!r}")
    engine = _choice(body, "engine", ENGINES, ctx, where)
    dtype = _choice(body, "dtype", DTYPES, ctx, where)
    path = _field(body, "path", str, where, ctx)
    check_relative_path(path, f"{where}: {ctx}.path")
    files = _field(body, "files", dict, where, ctx)
    if not files:
        raise BundleError(f"{where}: {ctx}.files is empty")
    for rel, digest in files.items():
        check_relative_path(rel, f"{where}: {ctx}.files")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise BundleError(f"{where}: {ctx}.files[{rel!r}] is not a sha256 hex digest")
    options = check_options(role, body.get("options", {}), str(where))
    return ComponentEntry(role, kind, engine, path, dtype, dict(files), options)


def check_relative_path(path: str, ctx: str) -> None:
    """Refuse empty, absolute, backslashed or ``..`` paths: a bundle never points outside itself."""
    if "\0" in path or not _encodable(path):
        raise BundleError(f"{ctx}: {path!r} is not a usable file name (NUL or invalid Unicode)")
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or "\\" in path or re.match(r"[A-Za-z]:", path):
        raise BundleError(f"{ctx}: {path!r} must be a relative POSIX path inside the bundle")
    if ".." in pure.parts:
        raise BundleError(f"{ctx}: {path!r} escapes the bundle ('..' is not allowed)")
    if pure.as_posix() != path:
        raise BundleError(f"{ctx}: {path!r} is not in normal form (write {pure.as_posix()!r})")
    if pure == PurePosixPath("."):
        raise BundleError(f"{ctx}: {path!r} must name a folder inside the bundle, not the bundle")


def _field(obj: dict, key: str, typ: type, where: Path, ctx: str = ""):
    name = f"{ctx}.{key}" if ctx else key
    if key not in obj:
        raise BundleError(f"{where}: missing required field {name!r}")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise BundleError(f"{where}: field {name!r} must be a JSON "
                          f"{_JSON_TYPE_NAMES[typ]}, got {short_repr(value)}")
    return value


def _choice(obj: dict, key: str, allowed: tuple[str, ...], ctx: str, where: Path) -> str:
    value = _field(obj, key, str, where, ctx)
    if value not in allowed:
        raise BundleError(f"{where}: {ctx}.{key}: unknown {key} {short_repr(value)} "
                          f"(known: {', '.join(allowed)})")
    return value


def _check_known_fields(obj: dict, known: tuple[str, ...], ctx: str, where: Path) -> None:
    """Refuse a field this schema version does not define: a misspelt one would be ignored."""
    for key in obj:
        if key not in known:
            name = f"{ctx}.{key}" if ctx else key
            raise BundleError(f"{where}: unknown field {name[:80]!r} (known: {', '.join(known)})")


def _check_no_surrogates(data, where: Path) -> None:
    """Refuse strings holding lone UTF-16 surrogates (``"\\ud800"``): no file or tokenizer
    can take them. Walks the tree without recursion (json already bounded its depth)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                raise BundleError(f"{where}: a string holds a lone UTF-16 surrogate escape")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_MANIFEST_FIELDS = ("schema_version", "name", "created_by", "components")
_ENTRY_FIELDS = ("kind", "engine", "path", "dtype", "files", "options")
_JSON_TYPE_NAMES = {int: "integer", str: "string", dict: "object"}
