"""Checks of ``Pipeline.__call__``'s arguments: each bad value is one ``InputError`` that says
what to pass instead, raised before any model work."""
from __future__ import annotations

import numbers

from t2i_sdk.errors import InputError
from t2i_sdk.limits import MAX_PROMPT_CHARS, PLAN_CAPS, SEED_MODULUS


def validated_text(text, what: str = "prompt") -> str:
    """``text`` with whitespace runs collapsed; must be a non-empty, encodable str."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from undecodable argv bytes
        raise InputError(f"{what} is not valid Unicode: {exc.reason} at character "
                         f"{exc.start}") from None
    text = " ".join(text.split())
    if not text:
        raise InputError(f"{what} is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(f"{what} is {len(text)} characters; at most {MAX_PROMPT_CHARS} are "
                         "accepted (the text encoder keeps about 77 tokens)")
    return text


def validated_rewrites(rewrites) -> list[str] | None:
    """Distinct cleaned texts, or None when not given."""
    if rewrites is None:
        return None
    if isinstance(rewrites, str) or not isinstance(rewrites, (list, tuple)):
        raise InputError("rewrites must be a list of strings")
    texts = [validated_text(t, f"rewrites[{i}]") for i, t in enumerate(rewrites)]
    if not texts:
        raise InputError("rewrites must hold at least one non-empty text")
    texts = list(dict.fromkeys(texts))
    if len(texts) > PLAN_CAPS["n_rewrites"]:
        raise InputError(f"{len(texts)} rewrites given; at most {PLAN_CAPS['n_rewrites']}")
    return texts


def validated_seed(seed) -> int:
    """An int in [0, 2**63): numpy ints are accepted, bools and floats are not."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an int, got {seed!r}")
    if not 0 <= int(seed) < SEED_MODULUS:
        raise InputError(f"seed={seed} is outside [0, 2**63 - 1]")
    return int(seed)


def validated_overrides(values: dict) -> dict[str, int]:
    """The plan knobs the caller set, each an int within its cap (``t2i_sdk.limits``)."""
    out = {}
    for name, v in values.items():
        if v is None:
            continue
        low = 0 if name == "rounds" else 1
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= PLAN_CAPS[name]:
            raise InputError(f"{name} must be an int in [{low}, {PLAN_CAPS[name]}], got {v!r}")
        out[name] = int(v)
    return out


def validated_lam(lam) -> float | None:
    if lam is None:
        return None
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not 0.0 <= lam <= 1.0:
        raise InputError(f"lam must be a number in [0, 1], got {lam!r}")
    return float(lam)
