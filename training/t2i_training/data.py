"""Prompt lists: read .txt / .jsonl files, split train / held-out deterministically, pick each
round's prompts. The paper trains on text-only prompts (Pick-a-Pic v2, T2I-CompBench++); the
shipped ``builtin:compositional`` set is ~200 GenEval-style prompts (objects, counts, colours,
positions, attribute binding)."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from t2i_sdk.errors import InputError

BUILTIN_PREFIX = "builtin:"
PROMPTS_DIR = Path(__file__).parent / "prompts"


BUILTIN_SUFFIXES = (".txt", ".jsonl")  # looked up in this order


def builtin_prompt_sets() -> list[str]:
    """Names usable as ``builtin:NAME`` (``prompts/NAME.txt`` or ``prompts/NAME.jsonl``)."""
    return sorted({p.stem for suffix in BUILTIN_SUFFIXES for p in PROMPTS_DIR.glob(f"*{suffix}")})


def resolve_prompt_path(spec: str | Path) -> Path:
    """A file path, or ``builtin:NAME`` for a shipped set."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX):]
        for suffix in BUILTIN_SUFFIXES:
            path = PROMPTS_DIR / f"{name}{suffix}"
            if path.is_file():
                return path
        raise InputError(f"no built-in prompt set {name!r} "
                         f"(have: {', '.join(builtin_prompt_sets())})")
    return Path(spec)


def load_prompts(spec: str | Path) -> list[str]:
    """Prompts from ``.txt`` (one per line; blank lines and ``#`` comments skipped) or ``.jsonl``
    (one object with a ``"prompt"`` string per line, or a bare JSON string). Whitespace is
    collapsed and duplicates dropped, first occurrence kept."""
    path = resolve_prompt_path(spec)
    if not path.is_file():
        raise InputError(f"{path}: prompt file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        prompts = [_jsonl_prompt(line, path, i) for i, line in enumerate(lines, 1) if line.strip()]
    elif path.suffix == ".txt":
        prompts = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    else:
        raise InputError(f"{path}: prompts must be a .txt or .jsonl file")
    prompts = list(dict.fromkeys(" ".join(p.split()) for p in prompts))
    if not prompts:
        raise InputError(f"{path}: no prompts in file")
    return prompts


def prompt_specs(spec: str | Path | None) -> dict[str, str]:
    """``{prompt: caption}`` from a ``.jsonl`` prompt file's ``"caption"`` fields (what each
    typed prompt asks for, for judges that score against a spec); empty for other files."""
    if spec is None:
        return {}
    path = resolve_prompt_path(spec)
    if path.suffix != ".jsonl" or not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line) if line.strip() else None
        if isinstance(item, dict) and isinstance(item.get("caption"), str):
            out[" ".join(str(item.get("prompt", "")).split())] = item["caption"]
    return out


def _jsonl_prompt(line: str, path: Path, lineno: int) -> str:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{lineno}: not JSON: {e.msg}") from None
    if isinstance(item, dict):
        item = item.get("prompt")
    if not isinstance(item, str) or not item.strip():
        raise InputError(f"{path}:{lineno}: expected {{\"prompt\": \"...\"}} or a JSON string")
    return item


def stable_fraction(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``(seed, text)``: same on every machine and Python run."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def stable_seed(*parts) -> int:
    """A 31-bit seed fixed by ``parts`` (unlike ``hash()``, not salted per process)."""
    return int(stable_fraction("\x00".join(map(str, parts)), 0) * 2**31)


def split_prompts(prompts: list[str], held_out_fraction: float, seed: int = 0
                  ) -> tuple[list[str], list[str]]:
    """``(train, held_out)``. Membership depends only on each prompt's text and ``seed``, so
    adding prompts to a file never moves old ones across the split. Both sides keep input order;
    with two or more prompts and a fraction > 0, each side gets at least one."""
    if not held_out_fraction:
        return list(prompts), []
    ranked = sorted(prompts, key=lambda p: stable_fraction(p, seed))
    k = round(len(prompts) * held_out_fraction)
    k = min(max(k, 1), len(prompts) - 1) if len(prompts) >= 2 else 0
    held = set(ranked[:k])
    return [p for p in prompts if p not in held], [p for p in prompts if p in held]


def spread_subset(prompts: list[str], k: int | None) -> list[str]:
    """At most ``k`` prompts evenly spaced through ``prompts`` (all of them if ``k`` is None or
    larger): a prompt file grouped by category keeps every category, unlike a prefix."""
    if k is None or k >= len(prompts):
        return list(prompts)
    return [prompts[i * len(prompts) // k] for i in range(k)]


def round_prompts(train: list[str], per_round: int | None, seed: int, round_index: int
                  ) -> list[str]:
    """The prompts of one round: all of ``train``, or a seeded sample of ``per_round``."""
    if per_round is None or per_round >= len(train):
        return list(train)
    return random.Random(stable_seed(seed, "round", round_index)).sample(train, per_round)
