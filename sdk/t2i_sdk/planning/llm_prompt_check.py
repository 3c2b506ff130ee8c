"""Does an LLM layout draw what the prompt states? Objects, counts, colours and relations.

A small chat model writes plausible JSON that says something else: it copies its example,
invents objects ("in a kitchen", three circles for "a circle"), paints every object black.
``check_against_prompt`` compares a schema-valid LLM layout with ``parse_prompt``'s reading
of the prompt and refuses it (``LayoutMismatchError``, the reason first) when it

- boxes an object the prompt does not name ("invented object"),
- draws a stated count wrong, or leaves a stated object out ("wrong count"),
- gives an object a colour the prompt does not state for it ("wrong colour"),
- breaks a stated left/right/above/below/inside relation, by box centres ("broken relation").

What passes is tidied to the prompt's words: labels become the parser's ("keyboard" ->
"computer keyboard"), phrases the parsed group's phrase (the drafter is conditioned on them,
so a phrase must not smuggle in what the checks refused), a missing colour the one stated,
and a background with words the prompt lacks the prompt's own background.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from t2i_sdk.errors import InputError
from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.planning import lexicon as lx
from t2i_sdk.planning.prompt_parser import ObjectGroup, ParsedPrompt, normalize, parse_prompt

# Reason prefixes (the benchmark buckets fallbacks by them).
INVENTED = "invented object"
WRONG_COUNT = "wrong count"
WRONG_COLOR = "wrong colour"
BROKEN_RELATION = "broken relation"
MISMATCH_KINDS = (INVENTED, WRONG_COUNT, WRONG_COLOR, BROKEN_RELATION)

# Words a count is read from, looking back from the noun: "two big fluffy red cats".
_EXACT_QUANTIFIERS = frozenset(("pair", "couple", "dozen"))
_VAGUE_QUANTIFIERS = frozenset(lx.QUANTIFIERS) - _EXACT_QUANTIFIERS
_COUNT_LOOKBACK = 6  # words before the noun searched for its number
_COUNT_STOPS = frozenset((",", ";", ".", "&", "and", "or", "with", "to", "of", "on", "in",
                          "at", "near", "above", "below", "under", "behind", "beside"))
# Minimum for a plural whose number is not stated ("cats", "some birds").
MIN_UNSTATED_PLURAL = 2
# A background keeps at most this share of words the prompt does not have ("a", "the" aside).
_BACKGROUND_FILLER = frozenset(("a", "an", "the", "in", "on", "at", "of", "with", "and"))


class LayoutMismatchError(InputError):
    """The LLM layout contradicts the prompt; the message starts with one of MISMATCH_KINDS."""


@dataclass(frozen=True)
class StatedObject:
    """What the prompt states about one label: its groups, total count, colours."""

    label: str
    groups: tuple[ObjectGroup, ...]
    count: int  # exact total when ``exact``, else the least acceptable
    exact: bool
    colors: frozenset  # stated colours; empty when the prompt gives none

    def count_ok(self, n: int) -> bool:
        return n == self.count if self.exact else n >= self.count


def check_against_prompt(layout: Layout, prompt: str,
                         parsed: ParsedPrompt | None = None) -> Layout:
    """``layout`` tidied to the prompt's words, or ``LayoutMismatchError`` naming what it
    gets wrong. ``parsed``: ``parse_prompt(prompt)`` when the caller has it."""
    parsed = parsed or parse_prompt(prompt)
    stated = stated_objects(prompt, parsed)
    notes = list(layout.notes)
    objects = [_to_stated(o, i, stated, prompt, parsed, notes)
               for i, o in enumerate(layout.objects)]
    _check_counts(objects, stated)
    _check_relations(objects, parsed)
    background = _background(layout.background, prompt, parsed, notes)
    return replace(layout, objects=tuple(objects), background=background, notes=tuple(notes))


def stated_objects(prompt: str, parsed: ParsedPrompt) -> dict[str, StatedObject]:
    """Label -> what the prompt states about it (groups with one label are pooled)."""
    words = lx.TOKEN_RE.findall(normalize(prompt))
    by_label: dict[str, list[ObjectGroup]] = {}
    for group in parsed.groups:
        by_label.setdefault(group.label, []).append(group)
    stated = {}
    for label, groups in by_label.items():
        exact = _count_is_stated(words, label)
        count = sum(g.count for g in groups) if exact else \
            max(MIN_UNSTATED_PLURAL, len(groups))
        colors = frozenset(g.color for g in groups if g.color)
        stated[label] = StatedObject(label, tuple(groups), count, exact, colors)
    return stated


def _count_is_stated(words: list[str], label: str) -> bool:
    """Does the prompt give ``label`` an exact number? "a cat", "two cats", "a pair of
    shoes": yes; "cats", "some birds", "several cups": no. A label not written as such in
    the prompt (the parser built it) counts as stated."""
    target = label.split()
    n = len(target)
    for i in range(len(words) - n + 1):
        if [lx.singularize(w) for w in words[i:i + n]] != target:
            continue
        for w in reversed(words[max(0, i - _COUNT_LOOKBACK):i]):
            if w in _COUNT_STOPS and not (w == "of" and _EXACT_QUANTIFIERS & set(words[:i])):
                break
            if w.isdigit() or w in _EXACT_QUANTIFIERS or (
                    w in lx.NUMBER_WORDS and w not in ("a", "an")):
                return True
            if w in _VAGUE_QUANTIFIERS:
                return False
        return not lx.is_plural(words[i + n - 1])  # "a cat", "the cat": one
    return True


def _to_stated(obj: LayoutObject, i: int, stated: dict[str, StatedObject], prompt: str,
               parsed: ParsedPrompt, notes: list[str]) -> LayoutObject:
    """``obj`` with the stated label, phrase and colour; refused when it has none of them."""
    label = _stated_label(obj.label, stated)
    if label is None:
        where = "the prompt's scene" if _in_background(obj.label, parsed) else "the prompt"
        named = ", ".join(f"'{s}'" for s in stated) or "nothing"
        raise LayoutMismatchError(f"{INVENTED}: object {i} '{obj.label}' is not an object "
                                  f"{where} names (it names {named})")
    info = stated[label]
    color = obj.color
    if color is not None and color not in info.colors:
        said = " or ".join(sorted(info.colors)) if info.colors else "no colour"
        raise LayoutMismatchError(f"{WRONG_COLOR}: object {i} '{label}' is {color}; the "
                                  f"prompt says {said}")
    if color is None and len(info.colors) == 1:
        (color,) = info.colors
        notes.append(f"llm object {i} ({label}): colour {color} from the prompt")
    group = next((g for g in info.groups if g.color == color), info.groups[0])
    return LayoutObject(phrase=group.phrase, label=label, color=color, box=obj.box)


def _stated_label(label: str, stated: dict[str, StatedObject]) -> str | None:
    """The parsed label ``label`` names: itself, or the one compound it ends ("keyboard" of
    "computer keyboard") or that ends it ("wooden chair" -> "chair")."""
    label = lx.singular_label(label)
    if label in stated:
        return label
    words = label.split()
    matches = [s for s in stated
               if s.split()[-len(words):] == words or words[-len(s.split()):] == s.split()]
    return matches[0] if len(matches) == 1 else None


def _in_background(label: str, parsed: ParsedPrompt) -> bool:
    return bool(parsed.background) and lx.mentions(parsed.background, label)


def _check_counts(objects: list[LayoutObject], stated: dict[str, StatedObject]) -> None:
    for label, info in stated.items():
        n = sum(o.label == label for o in objects)
        if not info.count_ok(n):
            want = str(info.count) if info.exact else f"at least {info.count}"
            raise LayoutMismatchError(f"{WRONG_COUNT}: {n} '{label}' boxes; the prompt states "
                                      f"{want}")


def _centre(objects: list[LayoutObject], label: str) -> tuple[float, float]:
    boxes = [o.box for o in objects if o.label == label]
    return (sum(b[0] + b[2] for b in boxes) / (2 * len(boxes)),
            sum(b[1] + b[3] for b in boxes) / (2 * len(boxes)))


def _relation_holds(kind: str, subject: tuple, obj: tuple, obj_boxes: list) -> bool | None:
    """Centre test for ``kind`` (y grows downward); None for kinds not checked."""
    (sx, sy), (ox, oy) = subject, obj
    if kind == "left_of":
        return sx < ox
    if kind == "right_of":
        return sx > ox
    if kind == "above":
        return sy < oy
    if kind == "below":
        return sy > oy
    if kind == "inside":
        return any(b[0] <= sx <= b[2] and b[1] <= sy <= b[3] for b in obj_boxes)
    return None


def _check_relations(objects: list[LayoutObject], parsed: ParsedPrompt) -> None:
    groups = parsed.groups
    for rel in parsed.relations:
        if not (0 <= rel.subject < len(groups) and 0 <= rel.object < len(groups)):
            continue
        a, b = groups[rel.subject].label, groups[rel.object].label
        if a == b:
            continue  # "a cat left of a cat": which box is which is not knowable
        holds = _relation_holds(rel.kind, _centre(objects, a), _centre(objects, b),
                                [o.box for o in objects if o.label == b])
        if holds is False:
            raise LayoutMismatchError(f"{BROKEN_RELATION}: '{a}' is not {rel.kind} '{b}' "
                                      f"(box centres; the prompt says '{rel.phrase}')")


def _background(background: str | None, prompt: str, parsed: ParsedPrompt,
                notes: list[str]) -> str | None:
    """The LLM's background when the prompt has its words, else the prompt's own."""
    if background is None:
        return parsed.background
    prompt_words = set(lx.mention_words(prompt))
    words = [w for w in lx.mention_words(background) if w not in _BACKGROUND_FILLER]
    if all(w in prompt_words for w in words):
        return background
    notes.append(f"llm background '{background}' is not in the prompt; used "
                 f"{parsed.background!r}")
    return parsed.background
