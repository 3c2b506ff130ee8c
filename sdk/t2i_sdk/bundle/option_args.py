"""Component options for ``t2i bundle create``, from an existing bundle, JSON files and
``ROLE.KEY=VALUE`` assignments, merged in that order (a later source wins, key by key).

    options_from_bundle("bundles/shapes", ["drafter", "scorer"])
    options_from_files(["refiner=refiner_options.json"])
    options_from_assignments(["drafter.guidance_scale=3", "drafter.layout.max_side=0.3"])
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from t2i_sdk.bundle.manifest import ROLES, read_manifest
from t2i_sdk.errors import InputError


def options_from_bundle(bundle_dir: str | Path, roles: Iterable[str]) -> dict[str, dict]:
    """Each of ``roles``' options in the bundle at ``bundle_dir`` (roles it lacks are skipped).

    Only ``bundle.json`` is read (and validated): no file is hashed.
    """
    manifest = read_manifest(bundle_dir)
    return {role: json.loads(json.dumps(manifest.components[role].options))  # a deep copy
            for role in roles if role in manifest.components}


def options_from_files(pairs: Iterable[str]) -> dict[str, dict]:
    """``{role: options}`` from ``ROLE=PATH`` pairs, each PATH a JSON object."""
    found = {}
    for pair in pairs:
        role, path = _split(pair, "=", "ROLE=PATH.json")
        _check_role(role, pair)
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InputError(f"--options {pair}: cannot read {path} as JSON: "
                             f"{str(exc).splitlines()[0][:100]}") from None
        if not isinstance(data, dict):
            raise InputError(f"--options {pair}: {path} must hold a JSON object")
        found[role] = data
    return found


def options_from_assignments(pairs: Iterable[str]) -> dict[str, dict]:
    """``{role: options}`` from ``ROLE.KEY[.SUBKEY]=VALUE``; VALUE is JSON, or else a string."""
    found: dict[str, dict] = {}
    for pair in pairs:
        target, text = _split(pair, "=", "ROLE.KEY=VALUE")
        role, _, dotted = target.partition(".")
        _check_role(role, pair)
        keys = dotted.split(".")
        if not all(keys):
            raise InputError(f"--option {pair}: expected ROLE.KEY=VALUE")
        node = found.setdefault(role, {})
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise InputError(f"--option {pair}: {key} was already given a value")
        node[keys[-1]] = _value(text)
    return found


def merge_options(*layers: dict[str, dict]) -> dict[str, dict]:
    """One ``{role: options}`` from ``layers``, later ones winning key by key (nested too)."""
    merged: dict[str, dict] = {}
    for layer in layers:
        for role, options in layer.items():
            merged[role] = _merge(merged.get(role, {}), options)
    return merged


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both_dicts else value
    return out


def _split(pair: str, sep: str, form: str) -> tuple[str, str]:
    head, found, tail = pair.partition(sep)
    if not found or not head or not tail:
        raise InputError(f"{pair!r}: expected {form}")
    return head, tail


def _check_role(role: str, pair: str) -> None:
    if role not in ROLES:
        raise InputError(f"{pair!r}: unknown role {role!r} (roles: {', '.join(ROLES)})")


def _value(text: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text  # a bare word or sentence: the string itself
