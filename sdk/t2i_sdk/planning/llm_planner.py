"""The LLM planner: a chat model writes the layout as JSON; anything off falls back to rules.

The model is any object with ``generate(messages, n, seed, temperature, top_p,
max_new_tokens) -> list[str]`` (temperature 0 = greedy); it sees an instruction that names no
object and few-shot chat turns about objects prompts rarely draw (``llm_examples``). Its JSON
is validated strictly: schema, colours and box geometry here, then against what the prompt
states (``llm_prompt_check``: no invented objects, stated counts, colours and
left/right/above/below relations kept). On any failure the rule planner's layout is returned
with the reason in ``Layout.notes``.

Bounded whatever the model says: a reply over ``MAX_REPLY_CHARS`` or nested deeper than
``MAX_JSON_DEPTH`` is refused before ``json`` sees it (no RecursionError, no quadratic search);
a layout with more than ``MAX_GLIGEN_OBJECTS`` (30) objects keeps its first 30 with a note
(the drafter could ground no more; the first ones are the ones the model placed first, and
the rest of its layout is still valid, so it is not thrown away for the rule planner's);
phrases and the background are cut to ``MAX_PHRASE_CHARS``, labels longer than
``MAX_LABEL_CHARS`` are refused.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Protocol

from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_sdk.errors import InputError
from t2i_sdk.layout import MAX_PHRASE_CHARS, Layout, LayoutObject, clip_phrase, sanitize_box
from t2i_sdk.planning import lexicon as lx
from t2i_sdk.planning.llm_examples import FEW_SHOT, SYSTEM_PROMPT, example_turns
from t2i_sdk.planning.llm_prompt_check import (INVENTED, LayoutMismatchError,
                                               check_against_prompt)
from t2i_sdk.planning.rule_planner import RulePlanner

FALLBACK_NOTE = "llm planner fell back to rule planner: "
# 30 objects of ~120 characters each is ~4k characters; 32k leaves room for prose and fences.
MAX_REPLY_CHARS = 32_000
MAX_JSON_DEPTH = 16  # a layout nests 4 deep: {"objects": [{"box": [...]}]}
MAX_DECODE_TRIES = 64  # '{' positions tried as the start of the JSON object
MAX_LABEL_CHARS = 64  # "fire hydrant": a label is a noun, a few words at most

# The instruction names no object; the examples are chat turns (see llm_examples).
DEFAULT_SYSTEM_PROMPT = SYSTEM_PROMPT


class ChatLM(Protocol):
    def generate(self, messages: list[dict], n: int, seed: int, temperature: float,
                 top_p: float, max_new_tokens: int) -> list[str]:
        """``n`` completions of the chat ``messages`` ({"role", "content"} dicts)."""


class LayoutJSONError(InputError):
    """The model's reply is not a usable layout; the message says why."""


def first_json_object(text: str) -> dict:
    """The first JSON object in ``text`` (prose and code fences around it are ignored).

    Raises :class:`LayoutJSONError` for a reply over ``MAX_REPLY_CHARS`` or nested deeper
    than ``MAX_JSON_DEPTH``, and when none of the first ``MAX_DECODE_TRIES`` '{' starts one.
    """
    if not isinstance(text, str):
        raise LayoutJSONError(f"reply is {type(text).__name__}, not text")
    if len(text) > MAX_REPLY_CHARS:
        raise LayoutJSONError(f"reply of {len(text):,} characters is over the "
                              f"{MAX_REPLY_CHARS:,}-character cap")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise LayoutJSONError(f"reply nests {depth} levels deep (at most {MAX_JSON_DEPTH})")
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(MAX_DECODE_TRIES):
        if start == -1:
            break
        try:
            obj, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # JSONDecodeError; an int over 4300 digits
            obj = None
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    raise LayoutJSONError("no JSON object in the reply")


def json_depth(text: str) -> int:
    """Deepest bracket nesting of ``text``, brackets inside JSON strings not counted; one
    linear pass, no recursion (unbalanced closers are ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _color(value: Any, i: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise LayoutJSONError(f"object {i}: color {value!r} is not a string or null")
    name = lx.COLOR_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in lx.COLORS:
        raise LayoutJSONError(f"object {i}: color {value!r} is not a basic color")
    return name


def _object(item: Any, i: int, words: tuple[str, ...], notes: list[str]) -> LayoutObject | None:
    """One validated object, or None when its box is dropped (reason in ``notes``).
    ``words``: the prompt's ``lexicon.mention_words``."""
    if not isinstance(item, dict):
        raise LayoutJSONError(f"object {i} is not a JSON object")
    label, phrase = item.get("label"), item.get("phrase")
    if not isinstance(label, str) or not lx.singular_label(label):
        raise LayoutJSONError(f"object {i}: label {_short(label)} is not a non-empty string")
    if len(label) > MAX_LABEL_CHARS:
        raise LayoutJSONError(f"object {i}: label of {len(label)} characters is longer than "
                              f"{MAX_LABEL_CHARS}")
    if phrase is not None and not isinstance(phrase, str):
        raise LayoutJSONError(f"object {i}: phrase {_short(phrase)} is not a string")
    if not lx.mentions(words, label):
        raise LayoutJSONError(f"{INVENTED}: label {label!r} not in prompt")
    color = _color(item.get("color"), i)
    if "box" not in item:
        raise LayoutJSONError(f"object {i}: no box")
    box, note = sanitize_box(item["box"])
    if note:
        notes.append(f"llm object {i} ({label}): {note}")
    if box is None:
        return None
    label = lx.singular_label(label)
    phrase = _clipped(phrase or "", f"llm object {i} phrase", notes) \
        or " ".join(["a", *([color] if color else []), label])
    return LayoutObject(phrase=phrase, label=label, color=color, box=box)


def _clipped(text: str, what: str, notes: list[str]) -> str:
    """``text`` stripped and cut to ``MAX_PHRASE_CHARS`` (noted when cut)."""
    text = text.strip()
    short = clip_phrase(text)
    if short != text:
        notes.append(f"{what} cut from {len(text):,} to {len(short)} characters "
                     f"(at most {MAX_PHRASE_CHARS})")
    return short


def _short(value: Any, limit: int = 60) -> str:
    """A repr for an error message: one short line, whatever ``value`` is."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def layout_from_json(obj: Any, prompt: str) -> Layout:
    """Validate a parsed LLM reply against ``prompt``; raises LayoutJSONError when unusable.

    Boxes are clamped into [0, 1] or dropped (see ``sanitize_box``), each noted. Only the first
    ``MAX_GLIGEN_OBJECTS`` objects are read (noted when there were more).
    """
    if not isinstance(obj, dict):
        raise LayoutJSONError("reply is not a JSON object")
    if not isinstance(prompt, str):
        raise LayoutJSONError(f"prompt is {type(prompt).__name__}, not text")
    items = obj.get("objects")
    if not isinstance(items, list):
        raise LayoutJSONError("'objects' is missing or not a list")
    background = obj.get("background")
    if background is not None and not isinstance(background, str):
        raise LayoutJSONError(f"background {_short(background)} is not a string or null")
    notes: list[str] = []
    if len(items) > MAX_GLIGEN_OBJECTS:
        notes.append(f"llm layout has {len(items):,} objects; kept the first "
                     f"{MAX_GLIGEN_OBJECTS} (the most the drafter grounds)")
        items = items[:MAX_GLIGEN_OBJECTS]
    words = lx.mention_words(prompt)
    objects = [o for i, item in enumerate(items) if (o := _object(item, i, words, notes))]
    if not objects:
        raise LayoutJSONError("no valid object left" + (f" ({'; '.join(notes)})" if notes else ""))
    background = _clipped(background or "", "llm background", notes) or None
    return Layout(tuple(objects), background, "llm", tuple(notes))


class LLMPlanner:
    """Layout from a chat model, checked against the prompt; the rule planner's layout on any
    failure.

    ``plan`` is greedy (temperature 0, seed 0), so the same model gives the same layout.
    ``examples``: (prompt, reply dict) few-shot pairs sent as chat turns before the prompt
    (default ``llm_examples.FEW_SHOT``; ``()`` for none).

    ``prefer_in_auto``: whether ``planner="auto"`` should pick this planner over the rule
    planner. False by default because measured it loses: with SmolLM2-135M-Instruct (the
    bundles' planner) on the dev set (benchmarks/planner_compare.py ->
    benchmarks/results/planner/compare.json) almost no reply survives the checks, so the
    layouts are the rule planner's plus ~20 s of decoding per prompt on one thread. A bundle
    whose planner model measures better may set it; ``planner="llm"`` always selects this one.
    """

    def __init__(self, lm: ChatLM, *, system_prompt: str | None = None,
                 examples: tuple[tuple[str, dict], ...] = FEW_SHOT,
                 max_new_tokens: int = 256, fallback: RulePlanner | None = None,
                 prefer_in_auto: bool = False):
        self.lm = lm
        self.prefer_in_auto = prefer_in_auto
        self.system_prompt = system_prompt or DEFAULT_SYSTEM_PROMPT
        self.examples = tuple(examples)
        self.max_new_tokens = max_new_tokens
        self.fallback = fallback or RulePlanner()

    def messages(self, prompt: str) -> list[dict]:
        return [{"role": "system", "content": self.system_prompt},
                *example_turns(self.examples),
                {"role": "user", "content": prompt}]

    def plan(self, prompt: str) -> Layout:
        """source "llm" when the reply validates, else source "rule" with the reason noted."""
        try:
            reply = self._reply(prompt)
        except LayoutJSONError as err:
            return self._fall_back(prompt, str(err))
        except Exception as err:  # the model is a plug-in: any crash of it means "use rules"
            return self._fall_back(prompt, f"language model raised {type(err).__name__}: {err}")
        try:
            return check_against_prompt(layout_from_json(first_json_object(reply), prompt),
                                        prompt)
        except (LayoutJSONError, LayoutMismatchError) as err:
            return self._fall_back(prompt, str(err))

    def _fall_back(self, prompt: str, reason: str) -> Layout:
        layout = self.fallback.plan(prompt)
        return replace(layout, notes=(FALLBACK_NOTE + reason, *layout.notes))

    def _reply(self, prompt: str) -> str:
        replies = self.lm.generate(self.messages(prompt), n=1, seed=0, temperature=0.0,
                                   top_p=1.0, max_new_tokens=self.max_new_tokens)
        if not isinstance(replies, (list, tuple)) or not replies \
                or not isinstance(replies[0], str):
            raise LayoutJSONError(f"language model returned {type(replies).__name__}, "
                                  "not a list of strings")
        return replies[0]
