"""Parse a compositional prompt into object groups, spatial relations and a background.

"a photo of three red apples to the left of a blue cup in a kitchen" ->
groups [3 x apple/red, 1 x cup/blue], relations [(0, "left_of", 1)], background "in a kitchen".

One left-to-right pass over precompiled-regex tokens; look-aheads stop at the next separator,
so the cost grows with the prompt length times the longest phrase, not faster. Bounded output
whatever the prompt: at most ``MAX_GROUPS`` groups (later objects are ignored, with a note),
counts capped at ``lexicon.MAX_COUNT``, phrases at ``layout.MAX_PHRASE_CHARS``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_sdk.errors import InputError
from t2i_sdk.layout import clip_phrase
from t2i_sdk.planning import lexicon as lx

# Every group is at least one box and GLIGEN grounds at most 30: more groups cannot be drawn.
MAX_GROUPS = MAX_GLIGEN_OBJECTS
# Adjectives before the noun and words of an "of ..." tail kept in a group's phrase.
MAX_PHRASE_WORDS = 12
# An "-ing" word ends a noun phrase that names an object; past this many words the phrase is
# not a noun phrase anyway, and re-reading it at every such word would be quadratic.
_MAX_VERB_CHECK_WORDS = 16
_MAX_COUNT_DIGITS = 6  # "999999999 stars" is clamped to MAX_COUNT; more digits mean the same

RELATION_KINDS = ("left_of", "right_of", "above", "below", "next_to", "near")

# "in front of"/"behind" are depth, which a 2D box cannot show: laid out as "near".
_RELATION_PHRASES = {
    "left_of": ("left of", "to the left of", "on the left of", "on the left side of",
                "to the left side of", "at the left of"),
    "right_of": ("right of", "to the right of", "on the right of", "on the right side of",
                 "to the right side of", "at the right of"),
    "above": ("above", "over", "on top of", "atop", "on the top of"),
    "below": ("below", "under", "beneath", "underneath", "at the bottom of"),
    "next_to": ("next to", "beside", "alongside", "adjacent to", "by the side of"),
    "near": ("near", "near to", "close to", "nearby", "in front of", "behind"),
}
# Verbs between two objects ("a man riding a horse") separate them like "and" does.
_SEPARATOR_PHRASES = (",", ";", ".", "&", "and", "or", "with", "plus", "while", "as well as",
                      "along with", "together with", "holding", "wearing", "carrying", "riding",
                      "eating", "chasing", "playing with", "looking at", "watching", "feeding",
                      "hugging", "pulling", "pushing", "driving", "reading", "using", "has",
                      "have", "having")
# Absolute positions: "a cat on the left and a dog on the right" -> cat left of dog.
_ABSOLUTE_PHRASES = {
    "left": ("on the left", "on the left side", "to the left", "at the left"),
    "right": ("on the right", "on the right side", "to the right", "at the right"),
    "top": ("at the top", "on the top", "in the top"),
    "bottom": ("at the bottom", "on the bottom", "in the bottom"),
    "center": ("in the middle", "in the center", "in the centre", "at the center"),
}
_PRONOUNS = frozenset(("it", "them", "him", "her", "this", "that", "top"))
_OPPOSITE_HINTS = (("left", "left_of", "right"), ("top", "above", "bottom"))
SCENE_PREPOSITIONS = frozenset(("in", "at", "inside", "during", "within", "amid", "among"))
_FILLERS = frozenset(("there", "is", "are", "also", "then", "sitting", "standing", "lying",
                      "laying", "placed", "positioned", "located", "parked", "sits", "stands",
                      "lies", "directly", "just", "slightly", "right", "which", "who",
                      "being", "of", "very"))
_NOT_NOUNS = frozenset(lx.NUMBER_WORDS) | frozenset(lx.QUANTIFIERS) | lx.DETERMINERS | {
    *_FILLERS, "and", "or", "to", "on", "in", "at", "no", "zero", "left", "top", "bottom", "side"}

_LEAD_IN_RE = re.compile(
    r"^\s*(?:(?:a|an|the)\s+)?(?:[\w-]+\s+){0,2}?(?:photo|photograph|picture|image|"
    r"painting|drawing|illustration|render|rendering|sketch|portrait|snapshot|shot|artwork|"
    r"depiction)\s+of\s+")
_THERE_IS_RE = re.compile(r"^\s*there\s+(?:is|are)\s+")
_GREY_RE = re.compile(r"\bgrey\b")


def _phrase_table(phrases: dict[str, tuple[str, ...]]) -> dict[str, list[tuple[tuple, str]]]:
    """First word -> [(words, value)] longest first, so "to the left of" beats "to"."""
    table: dict[str, list[tuple[tuple, str]]] = {}
    for value, texts in phrases.items():
        for text in texts:
            words = tuple(text.split())
            table.setdefault(words[0], []).append((words, value))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))
    return table


_RELATIONS = _phrase_table(_RELATION_PHRASES)
_SEPARATORS = _phrase_table({"sep": _SEPARATOR_PHRASES})
_ABSOLUTE = _phrase_table(_ABSOLUTE_PHRASES)


@dataclass(frozen=True)
class ObjectGroup:
    """``count`` copies of one object: ``phrase`` is the phrase for ONE copy ("a red apple")."""

    label: str
    count: int
    color: str | None
    phrase: str


@dataclass(frozen=True)
class SpatialRelation:
    subject: int  # group index
    kind: str  # one of RELATION_KINDS
    object: int  # group index
    phrase: str  # as written: "to the left of"


@dataclass(frozen=True)
class ParsedPrompt:
    groups: tuple[ObjectGroup, ...]
    relations: tuple[SpatialRelation, ...]
    background: str | None
    notes: tuple[str, ...]


def normalize(prompt: str) -> str:
    """Lower-case, "grey" -> "gray", without a "a photo of" / "there is" lead-in."""
    text = _GREY_RE.sub("gray", prompt.lower())
    text = _LEAD_IN_RE.sub("", text, count=1)
    return _THERE_IS_RE.sub("", text, count=1)


def _match(table: dict, words: list[str], i: int) -> tuple[str, int] | None:
    for phrase, value in table.get(words[i], ()):
        if tuple(words[i:i + len(phrase)]) == phrase:
            return value, len(phrase)
    return None


def _read_count(words: list[str]) -> tuple[int | None, int]:
    """(count, words consumed) from the start of a noun phrase; count is None when the
    phrase does not say (bare "cats", or "the cats"): the noun's number decides."""
    i = 1 if words[0] in lx.DETERMINERS else 0  # "the two cats", "the cat"
    w = words[i] if i < len(words) else ""
    if w in ("a", "an") and len(words) > i + 1 and words[i + 1] in lx.QUANTIFIERS:
        count, i = lx.QUANTIFIERS[words[i + 1]], i + 2  # "a pair of", "a few"
    elif w in lx.QUANTIFIERS:
        count, i = lx.QUANTIFIERS[w], i + 1
    elif w.isdigit():  # ASCII digits (TOKEN_RE); a huge number is just "too many"
        count = int(w) if len(w) <= _MAX_COUNT_DIGITS else lx.MAX_COUNT + 1
        i += 1
    elif w in lx.NUMBER_WORDS:
        count, i = lx.NUMBER_WORDS[w], i + 1
    elif w in ("no", "zero"):
        count, i = 0, i + 1
    else:
        return None, i
    if i < len(words) and words[i] == "of":
        i += 1
    return count, i


def _read_noun(words: list[str]) -> tuple[str, int] | None:
    """(singular label, index where it starts): longest known multi-word noun, else last word."""
    last = lx.singularize(words[-1])
    for k in range(min(lx.MAX_NOUN_WORDS, len(words)), 1, -1):
        cand = " ".join(words[-k:-1] + [last])
        if cand in lx.MULTIWORD_NOUNS:
            return cand, len(words) - k
    word = words[-1]
    is_color = lx.normalize_color(word) and last not in lx.KNOWN_NOUNS  # "an orange" is fruit
    if word in _NOT_NOUNS or is_color or not word.replace("-", "").isalpha():
        return None
    return last, len(words) - 1


def _strip_fillers(words: list[str]) -> list[str]:
    start = 0
    while start < len(words) and words[start] in _FILLERS:
        start += 1
    words = words[start:]
    # "a cat sitting": a trailing -ing word after a known noun is a verb, not the object.
    end = len(words)
    while end and (words[end - 1] in _FILLERS or (
            end > 1 and words[end - 1].endswith("ing") and words[end - 1] not in lx.KNOWN_NOUNS
            and lx.singularize(words[end - 2]) in lx.KNOWN_NOUNS)):
        end -= 1
    return words[:end]


def parse_group(words: list[str], notes: list[str]) -> ObjectGroup | None:
    """One noun phrase ("three big red apples") -> ObjectGroup, or None if it names nothing."""
    words = _strip_fillers(words)
    if not words:
        return None
    count, start = _read_count(words)
    rest = words[start:]
    # "a vase of flowers": the object is the vase; "of flowers" stays in its phrase.
    tail = rest[rest.index("of"):] if "of" in rest[1:] else []
    rest = rest[:len(rest) - len(tail)]
    noun = _read_noun(rest) if rest else None
    if noun is None:
        return None
    label, noun_start = noun
    if count is None:
        bare_ok = label in lx.KNOWN_NOUNS or (len(rest) == 1 and not label.endswith("ing"))
        if start == 0 and not bare_ok:
            return None  # "highly detailed", "4k": style words, not objects
        count = 2 if lx.is_plural(rest[-1]) else 1
    if count > lx.MAX_COUNT:
        notes.append(f"count {count} of '{label}' clamped to {lx.MAX_COUNT}")
        count = lx.MAX_COUNT
    adjectives = [w for w in rest[:noun_start] if w not in _FILLERS]
    color = next((c for c in map(lx.normalize_color, adjectives) if c), None)
    body = " ".join(adjectives[-MAX_PHRASE_WORDS:] + [label] + tail[:MAX_PHRASE_WORDS])
    article = "an" if body[0] in "aeiou" else "a"
    return ObjectGroup(label=label, count=count, color=color,
                       phrase=clip_phrase(f"{article} {body}"))


class _Parser:
    """State of one left-to-right pass; see ``parse_prompt``."""

    def __init__(self, text: str):
        self.text = text
        self.spans = [(m.group(), m.start(), m.end()) for m in lx.TOKEN_RE.finditer(text)]
        self.words = [s[0] for s in self.spans]
        self.groups: list[ObjectGroup] = []
        self.relations: list[SpatialRelation] = []
        self.backgrounds: list[str] = []
        self.notes: list[str] = []
        self.segment: list[str] = []
        self.pending: tuple[str, str, list[int]] | None = None  # (kind, phrase, subjects)
        self.clause_start = 0  # first group that a coming relation applies to
        self.hints: dict[int, str] = {}  # group -> absolute position ("left", "top", ...)
        self.dropped = 0  # groups past MAX_GROUPS

    def run(self) -> ParsedPrompt:
        i, n = 0, len(self.words)
        while i < n:
            i = self._step(i)
        self._flush()
        if self.pending:
            self.notes.append(f"relation '{self.pending[1]}' has no object; ignored")
        self._relate_hints()
        return ParsedPrompt(tuple(self.groups), tuple(self.relations),
                            ", ".join(self.backgrounds) or None, tuple(self.notes))

    def _step(self, i: int) -> int:
        words = self.words
        rel = _match(_RELATIONS, words, i)
        absolute = _match(_ABSOLUTE, words, i) if rel is None else None
        if absolute is not None:
            self._flush()
            if self.groups:
                self.hints[len(self.groups) - 1] = absolute[0]
            return i + absolute[1]
        if rel is None and words[i] == "on" and self._names_object(i + 1):
            rel = ("above", 1)  # "a cup on a table": on top of; "on a beach" is a scene
        if rel is not None:
            self._flush()
            subjects = list(range(self.clause_start, len(self.groups)))
            if not subjects and self.groups:
                subjects = [len(self.groups) - 1]  # chained: "A above B left of C"
            phrase = " ".join(words[i:i + rel[1]])
            self.pending = (rel[0], phrase, subjects) if subjects else None
            return i + rel[1]
        sep = _match(_SEPARATORS, words, i)
        if sep is not None:
            self._flush()
            return i + sep[1]
        if words[i] in SCENE_PREPOSITIONS or words[i] == "on":
            self._flush()
            return self._read_background(i)
        if self._is_verb_after_noun(i):
            self._flush()  # "an astronaut riding ..." : the verb ends the astronaut
            return i + 1
        self.segment.append(words[i])
        return i + 1

    def _is_verb_after_noun(self, i: int) -> bool:
        """An -ing word after a known noun ("a dog chasing"), or before a counted object
        ("an astronaut riding a horse"); "a tall building" keeps its noun."""
        word, nxt = self.words[i], self.words[i + 1] if i + 1 < len(self.words) else ""
        if not word.endswith("ing") or word in lx.KNOWN_NOUNS or not self.segment:
            return False
        after_noun = lx.singularize(self.segment[-1]) in lx.KNOWN_NOUNS
        before_object = nxt in lx.NUMBER_WORDS or nxt in lx.DETERMINERS or nxt.isdigit()
        return after_noun or (before_object and len(self.segment) <= _MAX_VERB_CHECK_WORDS
                              and parse_group(self.segment, []) is not None)

    def _phrase_end(self, j: int) -> int:
        """Index of the next relation/separator/scene word from ``j`` on."""
        while j < len(self.words) and not (
                _match(_RELATIONS, self.words, j) or _match(_SEPARATORS, self.words, j)
                or self.words[j] in SCENE_PREPOSITIONS or self.words[j] == "on"):
            j += 1
        return j

    def _names_object(self, j: int) -> bool:
        group = parse_group(self.words[j:self._phrase_end(j)], [])
        return (group is not None and group.label in lx.KNOWN_NOUNS
                and group.label not in lx.SCENE_NOUNS)

    def _read_background(self, i: int) -> int:
        """A scene phrase runs to the next comma, or to an "and"/"with" that starts a counted
        object ("in a kitchen and a dog"), or to the end."""
        words, end = self.words, len(self.words)
        for j in range(i + 1, len(words)):
            if words[j] in ",;." or (words[j] in ("and", "with") and j + 1 < len(words) and (
                    words[j + 1] in lx.NUMBER_WORDS or words[j + 1].isdigit())):
                end = j
                break
        if end > i + 1 and not (end == i + 2 and words[i + 1] in _PRONOUNS):  # "on it"
            self.backgrounds.append(self.text[self.spans[i][1]:self.spans[end - 1][2]]
                                    .strip(" ,;."))
        return end

    def _flush(self) -> None:
        if not self.segment:
            return
        group = parse_group(self.segment, self.notes)
        self.segment = []
        if group is None:
            return
        if group.count == 0:
            self.notes.append(f"skipped '{group.label}': count 0")
            return
        if len(self.groups) >= MAX_GROUPS:
            if not self.dropped:
                self.notes.append(f"objects after the first {MAX_GROUPS} ignored")
            self.dropped += 1
            self.pending = None
            return
        self.groups.append(group)
        if self.pending:
            kind, phrase, subjects = self.pending
            new = len(self.groups) - 1
            self.relations += [SpatialRelation(s, kind, new, phrase) for s in subjects]
            self.pending = None
            self.clause_start = new + 1


    def _relate_hints(self) -> None:
        """"X on the left ... Y on the right" -> X left of Y (and top/bottom -> above)."""
        for first, kind, second in _OPPOSITE_HINTS:
            subjects = [g for g, h in self.hints.items() if h == first]
            objects = [g for g, h in self.hints.items() if h == second]
            self.relations += [SpatialRelation(a, kind, b, f"{first}/{second}")
                               for a in subjects for b in objects]


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Groups, relations and background of ``prompt``; deterministic, linear time."""
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be text, got {type(prompt).__name__}")
    return _Parser(normalize(prompt)).run()
