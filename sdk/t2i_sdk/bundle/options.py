"""The option keys each bundle role accepts, with the JSON type of each: one table, checked
when ``bundle.json`` is read and when a bundle is created.

A component's ``options`` hold stage settings. Some go to its engine's ``load`` (``engine``
below: the drafter's guidance, size and grounding; the refiner's guidance), the rest the
pipeline reads itself (the drafter's layout geometry, the refiner's strength and steps, the
rewriter's chat and sampling, the planner's system prompt). Every engine of a kind takes the
same keys: torch, onnxruntime and tensorrt drafters and refiners share their ``load``
signatures, and a causal LM's options are read by the SDK on any engine.

    check_options("drafter", {"guidance_scale": 4.0, "height": 64}, "bundle.json")
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable

from t2i_engines.regional_prompts import RegionalPrompts
from t2i_sdk.config import RewriteConfig
from t2i_sdk.errors import BundleError
from t2i_sdk.planning.box_geometry import GeometryConfig

_REPR_CHARS = 60  # a value quoted in an error is cut to this many characters


@dataclass(frozen=True)
class Option:
    """One known option key: what its value must be, and whether the engine's ``load`` takes it."""

    expected: str  # what the value must be, in words ("a number >= 0")
    accepts: Callable[[object], bool]
    engine: bool = False  # passed to the engine's load() (else read by the pipeline)


def _is_number(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_side(v) -> bool:
    return v is None or (_is_int(v) and 8 <= v <= 16384 and v % 8 == 0)


def _is_geometry(v) -> bool:
    return isinstance(v, dict) and all(_is_number(x) for x in v.values())


def _is_regional(v) -> bool:
    if v is None:
        return True
    if not isinstance(v, dict) or not set(v) <= {"template", "background"}:
        return False
    try:  # the engines' own check
        RegionalPrompts.from_option(v)
    except (TypeError, ValueError):
        return False
    return True


def _is_examples(v) -> bool:
    # JSON gives lists; Python callers (RewriteConfig, create_bundle) give tuples
    return isinstance(v, (list, tuple)) and all(
        isinstance(e, (list, tuple)) and len(e) == 2 and all(_is_text(t) for t in e) for e in v)


_GUIDANCE = Option("a finite number >= 0", lambda v: _is_number(v) and v >= 0, engine=True)
_SYSTEM_PROMPT = Option("a non-empty string", _is_text)

ROLE_OPTIONS: dict[str, dict[str, Option]] = {
    "drafter": {
        "guidance_scale": _GUIDANCE,
        "height": Option("an integer multiple of 8 in [8, 16384], or null", _is_side, engine=True),
        "width": Option("an integer multiple of 8 in [8, 16384], or null", _is_side, engine=True),
        "gligen_beta": Option("a number in [0, 1]",
                              lambda v: _is_number(v) and 0 <= v <= 1, engine=True),
        # each box's cross-attention reads its own phrase (t2i_engines.regional_prompts)
        "regional_prompts": Option(
            'null, or a JSON object with "template" (a string with one {}) and "background" '
            '("caption" or "layout")', _is_regional, engine=True),
        "layout": Option("a JSON object of numbers with keys "
                         + ", ".join(f.name for f in fields(GeometryConfig)), _is_geometry),
    },
    "scorer": {
        # the hybrid weight this scorer measured best (S = λ·S_scene + (1−λ)·S_object)
        "lam": Option("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    },
    "refiner": {
        "guidance_scale": _GUIDANCE,
        "refine_strength": Option("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1),
        "refine_steps": Option("an integer >= 1", lambda v: _is_int(v) and v >= 1),
        # what the budget planner expects refinement rounds 1, 2, ... to add (measured)
        "round_gains": Option("a non-empty list of numbers >= 0",
                              lambda v: isinstance(v, (list, tuple)) and len(v) > 0
                              and all(_is_number(x) and x >= 0 for x in v)),
    },
    "rewriter": {
        "system_prompt": _SYSTEM_PROMPT,
        "examples": Option("a list of [request, rewrite] pairs of non-empty strings",
                           _is_examples),
        "temperature": Option("a finite number >= 0", lambda v: _is_number(v) and v >= 0),
        "top_p": Option("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1),
        "max_new_tokens": Option("an integer >= 1", lambda v: _is_int(v) and v >= 1),
        "layout_from": Option('"prompt" or "rewrite"', lambda v: v in ("prompt", "rewrite")),
        # every rewrite is a sentence of this finite GBNF grammar (t2i_engines.finite_grammar)
        "grammar": Option("GBNF text, or null", lambda v: v is None or _is_text(v)),
    },
    "planner": {
        "system_prompt": Option("a non-empty string, or null", lambda v: v is None or _is_text(v)),
        # planner="auto" picks this LLM over the rule planner only when it measured better
        "prefer_in_auto": Option("true or false", lambda v: isinstance(v, bool)),
    },
}

def known_keys(role: str) -> str:
    """The option keys ``role`` accepts, comma-separated, for error messages."""
    return ", ".join(ROLE_OPTIONS[role]) or "none"


def check_options(role: str, options, where: str) -> dict:
    """``options`` when every key is known for ``role`` and every value has its type.

    Raises ``BundleError`` (one line, starting with ``where``) naming the role, the key and
    the known keys.
    """
    table = ROLE_OPTIONS[role]
    ctx = f"{where}: {role} options"
    if not isinstance(options, dict):
        raise BundleError(f"{ctx} must be a JSON object, got {short_repr(options)}")
    for key, value in options.items():
        option = table.get(key)
        if option is None:
            raise BundleError(f"{ctx}: unknown key {short_repr(key)} (known for a {role}: "
                              f"{known_keys(role)})")
        if not option.accepts(value):
            raise BundleError(f"{ctx}: {key!s} must be {option.expected}, got {short_repr(value)} "
                              f"(known for a {role}: {known_keys(role)})")
    # The config classes' own checks on the values (ranges across keys, pairs, choices).
    if role == "drafter" and "layout" in options:
        _check_config(GeometryConfig, options["layout"], f"{ctx}: layout")
    if role == "rewriter":
        _check_config(RewriteConfig, options, ctx)
    return options


def engine_kwargs(role: str, options: dict) -> dict:
    """The part of a component's ``options`` that its engine's ``load`` takes."""
    table = ROLE_OPTIONS[role]
    return {k: v for k, v in options.items() if k in table and table[k].engine}


def _check_config(cls, values: dict, ctx: str) -> None:
    names = [f.name for f in fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise BundleError(f"{ctx}: unknown key {short_repr(unknown[0])} "
                          f"(known: {', '.join(names)})")
    try:
        cls(**values)
    except (TypeError, ValueError) as exc:  # InputError is a ValueError
        raise BundleError(f"{ctx}: {exc}") from None


def short_repr(value) -> str:
    """``repr(value)`` cut to a length that keeps an error message one short line."""
    text = repr(value)
    return text if len(text) <= _REPR_CHARS else text[:_REPR_CHARS - 3] + "..."
