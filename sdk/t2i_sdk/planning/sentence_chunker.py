"""One left-to-right pass that chunks a normalised prompt into noun phrases and relations.

A noun phrase is [count word | determiner] modifiers* noun+ ["of" tail]: "three fluffy white
sheep", "the girl's", "a cup of hot tea". Between two phrases a relation phrase ("to the left
of", "hidden by", "on" before an object) makes relations; a list word ("and", ",") makes the
two phrases share the next relation; anything else (a verb) only separates them. A phrase
whose head is a scene noun is background; one with no known noun is dropped, except a bare
unknown word with an explicit count or next to a relation phrase ("two zorbs", "a zorb next to
a blorp"). Rules and their reasons: ``prompt_parser``'s docstring and the tests.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_sdk.layout import clip_phrase
from t2i_sdk.planning import grammar_words as gw
from t2i_sdk.planning import lexicon as lx
from t2i_sdk.planning import nouns
from t2i_sdk.planning import token_readers as tr
from t2i_sdk.planning import relation_tracker as rt
from t2i_sdk.planning.parsed_prompt import ObjectGroup, ParsedPrompt
from t2i_sdk.planning.relation_tracker import RelationTracker

# Every group is at least one box and GLIGEN grounds at most 30: more groups cannot be drawn.
MAX_GROUPS = MAX_GLIGEN_OBJECTS
# Modifiers before the noun and words of an "of ..." tail kept in a group's phrase.
MAX_PHRASE_WORDS = 12
_CLAUSE_OPENERS = frozenset((",", ";", ".", "and", "but", "then", "while", "where", "so",
                             "or", "when", "whereas", "meanwhile"))
_POSSESSIVE_PRONOUNS = {"his": "him", "her": "her", "its": "it", "their": "them"}
_NOUN_BEFORE_WORDS = frozenset(("with", "without", "of"))
# After a noun, these describe where or how it is; they are no head noun ("a cat alone").
# (Greetings and fillers, "please", "lol", are gap words: grammar_words.INTERJECTIONS.)
_PREDICATIVES = frozenset((
    "alone", "asleep", "awake", "outside", "together", "again", "too", "here", "there",
    "today", "tonight", "overhead", "upstairs", "downstairs", "underwater", "afloat",
    "aloft", "ablaze", "apart", "away", "back", "home", "indoors", "outdoors", "abroad",
    "ahead", "aside", "afar", "below", "above", "nearby", "everywhere", "somewhere", "now",
    "once", "twice", "style", "vibes", "aesthetic", "open", "full", "empty", "closed", "shut", "ready", "alive",
    "dead", "wide", "ajar", "high", "low", "upright", "sideways", "nearby", "first", "last",
    "right", "straight", "far", "way",  # "a taxi right behind the bus"
))
_DEFINITE = frozenset(("the", "this", "that", "these", "those"))
# Count words that take only a plural noun ("some" also takes a mass noun: "some bread rolls").
_PLURAL_COUNTS = frozenset(w for w, n in lx.NUMBER_WORDS.items() if n >= 2) | frozenset((
    "several", "many", "few", "couple", "pair", "dozen"))
# Words that open a verb's object: articles, possessives, object pronouns ("watches them").
_OBJECT_STARTS = frozenset(("a", "an", "the", "my", "his", "her", "its", "their", "our",
                            "your", "them", "him", "it", "us", "me", "you"))
_MODAL_FOLLOWERS = frozenset(("not", "be", "also", "still", "only", "even", "really"))
_MAX_RUN_NOUNS = 3  # "stone bridge": earlier nouns of a run are modifiers of the last
# After a picture word these make it the medium: "a picture where", "a poster with".
_MEDIUM_FOLLOWERS = frozenset(("with", "where", "for", "of", "that", "which", "showing",
                               "featuring", "depicting", "in", "about", "containing",
                               "including", "portraying", "illustrating", "showcasing"))


@dataclass
class _Chunk:
    """A noun phrase being read."""

    start: int  # token index of its first word
    end: int  # one past its last word
    count: int | None = None  # stated count; None: the noun's number decides
    determined: bool = False  # began with a count word, determiner or possessive
    mods: deque = field(default_factory=lambda: deque(maxlen=MAX_PHRASE_WORDS))
    nouns: list = field(default_factory=list)  # labels of the noun run, last is the head
    noun_end: int = -1  # token index just after the noun run
    plural: bool = False  # the head was written plural
    tail: list | None = None  # "of ..." words kept in the phrase
    tail_noun: bool = False


class SentenceChunker:
    """State of one pass over ``text`` (already ``prompt_parser.normalize``d)."""

    def __init__(self, text: str):
        self.text = text
        self.spans = [(m.start(), m.end()) for m in lx.TOKEN_RE.finditer(text)]
        self.words = [text[a:b] for a, b in self.spans]
        self.rel = RelationTracker()
        self.backgrounds: list[str] = []
        self.chunk: _Chunk | None = None
        self.prep: tuple[str, int] | None = None  # ("on", token index) before a phrase
        self.possessor: _Chunk | None = None  # "the girl's": boxed if what she has is
        self.relation_end = -1  # token index just after the last relation phrase
        self.dropped = 0  # groups past MAX_GROUPS
        self.determined_end = -1  # token index after the last noun run with a determiner

    def run(self) -> ParsedPrompt:
        i, n = 0, len(self.words)
        while i < n:
            i = self._step(i)
        self._flush()
        if self.relation_end == n:
            self.rel.bare_relation_end()
        self.rel.drop_open()
        self.rel.relate_hints()
        return ParsedPrompt(tuple(self.rel.groups), tuple(self.rel.relations),
                            ", ".join(self.backgrounds) or None, tuple(self.rel.notes))

    # --- one token ---------------------------------------------------------------------------

    def _step(self, i: int) -> int:
        words, w = self.words, self.words[i]
        rel = tr.match(tr.RELATIONS, words, i)
        if rel is not None:
            self._flush()
            self.rel.open_relation(rel[0], " ".join(words[i:i + rel[1]]),
                                   clause_initial=self._clause_initial(i))
            self.relation_end = i + rel[1]
            return i + rel[1]
        own_side = self._own_side(i)
        if own_side is not None:
            return own_side
        absolute = tr.match(tr.ABSOLUTES, words, i)
        if absolute is not None:
            self._flush()
            if self._clause_initial(i):
                self.rel.pending_hint = absolute[0]  # "..., and on the right a zebra"
            else:
                self.rel.hint(absolute[0])
            return i + absolute[1]
        if w in gw.CONDITIONAL_PREPOSITIONS:
            self._flush()
            self.prep = (w, i)
            return i + 1
        if w in rt.PRONOUN_OBJECTS and self.chunk is None and (
                (self.rel.open or self.prep) and self._ends_phrase(i + 1)
                or self.rel.awaits_anchor() and self._clause_after_pronoun(i + 1)):
            self._pronoun(w)
            return i + 1
        if w in ("and", "or") and self._between_colors(i):
            return self._modifier(i)  # "a black and white cat"
        joiner = tr.match(tr.COORDINATORS, words, i)
        if joiner is not None:
            self._flush()
            self.rel.list_word(w)
            return i + joiner[1]
        if w == "of" and self._read_of(i):
            return i + 1
        brk = tr.match(tr.BREAKS, words, i)
        if brk is not None:
            self._flush()
            if brk[0] == "end":
                if self.relation_end == i:
                    self.rel.bare_relation_end()
                self.rel.clause_end()
            else:
                self.rel.gap(verb=False, with_word=w == "with")
            return i + brk[1]
        count = tr.count_at(words, i)
        if count is not None:
            return self._count(i, *count)
        ch = self.chunk
        after_modifier = ch is not None and (ch.determined or bool(ch.mods) or bool(ch.nouns))
        # "loaded with presents": no verb follows "with" or "of"
        after_modifier = after_modifier or (i > 0 and words[i - 1] in _NOUN_BEFORE_WORDS) \
            or self._shares_determiner(i)
        if ch is not None and self._verb_after_subject(i):
            self._flush()  # "an owl watches them": the owl, then a verb
            self._gap(w)
            return i + 1
        noun = tr.noun_at(words, i, after_modifier=after_modifier,
                          after_aux=i > 0 and words[i - 1] in gw.AUXILIARIES)
        if noun is not None:
            return self._noun(i, *noun)
        if ch is not None and ch.nouns and ch.tail is None and ch.noun_end == i \
                and not ch.plural and self._unknown_head(i):
            ch.mods.extend(ch.nouns)  # "a stone jetty": the stone only says what it is made of
            ch.mods.append(w)
            ch.nouns, ch.end = [], i + 1
            return i + 1
        if ch is not None and ch.nouns:
            if ch.tail is not None and not ch.tail_noun and not tr.is_gap_word(w) \
                    and not gw.looks_like_verb(w):
                self._add_tail(ch, i, i + 1)  # "a cup of hot tea"
                return i + 1
            self._flush()
        if w in lx.DETERMINERS:  # a new phrase; the words before it had no noun
            self.possessor = None
            self.chunk = _Chunk(i, i + 1, determined=True)
            return i + 1
        determined = self.chunk is not None and self.chunk.determined
        if tr.is_gap_word(w) or (gw.looks_like_verb(w) and not determined) \
                or w in gw.AUXILIARIES or (w.isdigit() and not determined):
            self._gap(w)
            return i + 1
        return self._modifier(i)

    def _own_side(self, i: int) -> int | None:
        """"a hut stood on his left": left of him (the pronoun's group). Returns the index
        after the phrase, or None when there is none at ``i``."""
        words = self.words
        if words[i] not in ("on", "to", "at") or i + 2 >= len(words) \
                or words[i + 1] not in _POSSESSIVE_PRONOUNS or words[i + 2] not in ("left", "right"):
            return None
        end = i + 3 + (i + 3 < len(words) and words[i + 3] in ("side", "hand", "flank"))
        if not self._ends_phrase(end):
            return None
        self._flush()
        self.rel.open_relation(f"{words[i + 2]}_of", " ".join(words[i:end]), plain=True,
                               clause_initial=False)
        self.rel.pronoun_object(_POSSESSIVE_PRONOUNS[words[i + 1]])
        self.relation_end = end
        return end

    def _verb_after_subject(self, i: int) -> bool:
        """Is the word at ``i``, a noun that is also a common verb ("watch") right after a
        noun, the verb of that noun: it agrees in number ("an owl watches", "the boys watch")
        and an object follows (an article, possessive, number or object pronoun: "them", "the",
        "his", "two")? Not "the stone blocks", nor "the rock climbers who ...". "can" before a
        verb's base form is the modal ("a cat can fly"; "a soup can sitting on a shelf" and "a
        trash can by the door" stay cans)."""
        ch, words, w = self.chunk, self.words, self.words[i]
        if not ch.nouns or ch.noun_end != i or ch.tail is not None or i + 1 >= len(words):
            return False
        label, nxt = lx.singularize(w), words[i + 1]
        if w == "can":
            return nxt in _MODAL_FOLLOWERS or nxt in gw.VERBS or nxt in lx.VERB_NOUNS or (
                gw.looks_like_verb(nxt) and not gw.is_participle(nxt)
                and lx.singularize(nxt) not in lx.KNOWN_NOUNS)
        if not (label in lx.VERB_NOUNS or label in gw.VERBS) or lx.is_plural(w) == ch.plural:
            return False
        return nxt in _OBJECT_STARTS or nxt in lx.NUMBER_WORDS or nxt.isdigit()

    def _unknown_head(self, i: int) -> bool:
        """Is the word at ``i``, outside the lexicon right after a known noun, the head of
        their compound ("a stone jetty", "the chicken coop")? Only a noun-shaped word that
        ends the phrase (punctuation, a relation, a list word, a verb), or a plural after a
        count ("a dozen sushi rolls on a tray")."""
        w, words = self.words[i], self.words
        plural = self._plural_head(w)
        if not tr.may_be_unknown_noun(w) or (gw.looks_like_verb(w) and not plural) \
                or w in _PREDICATIVES or w in lx.DETERMINERS or w in lx.QUANTIFIERS \
                or w in lx.NUMBER_WORDS:
            return False
        # not at the very end, nor before a verb or a preposition: "a fence lol", "my dog rex
        # sat", "a laptop open on the desk", "a shelf full of cans"
        j = i + 1
        return j < len(words) and (words[j] in ",;." or bool(
            tr.match(tr.COORDINATORS, words, j) or tr.match(tr.RELATIONS, words, j)
            or tr.match(tr.BREAKS, words, j) == ("end", 1))
            or plural and words[j] in gw.CONDITIONAL_PREPOSITIONS)

    def _plural_head(self, w: str) -> bool:
        """"a dozen sushi rolls": after a count that takes only plurals ("two", "a dozen",
        "several"; not "some bread"), an -s word right after a singular noun is the plural
        head of the phrase, not a verb ("two cat sits" is no English)."""
        ch = self.chunk
        return ch.count is not None and ch.count >= 2 and w.endswith("s") and lx.is_plural(w) \
            and lx.singularize(w) not in gw.VERBS \
            and any(c in _PLURAL_COUNTS or c.isdigit()  # "two", "a dozen", "half a dozen"
                    for c in self.words[ch.start:ch.start + 3])

    def _shares_determiner(self, i: int) -> bool:
        """"their bucket and spade", "a cup and saucer": right after "and" / "or" that follows
        a noun with a determiner or count, a noun takes that determiner too, unless it is
        also a common verb ("the birds sing and fly")."""
        return i >= 2 and self.words[i - 1] in ("and", "or") and self.determined_end == i - 1 \
            and lx.singularize(self.words[i]) not in lx.VERB_NOUNS

    def _clause_initial(self, i: int) -> bool:
        """Does the phrase at ``i`` open a clause (prompt start, after punctuation or a
        conjunction), rather than follow a verb ("knocking over a tower")?"""
        return i == 0 or self.words[i - 1] in _CLAUSE_OPENERS

    def _ends_phrase(self, j: int) -> bool:
        """Nothing of a noun phrase at ``j``: "next to her." vs "next to her car"."""
        words = self.words
        return j >= len(words) or self.words[j] in ",;." or bool(
            tr.match(tr.COORDINATORS, words, j) or tr.match(tr.BREAKS, words, j)
            or tr.match(tr.RELATIONS, words, j)) or words[j] in gw.CONDITIONAL_PREPOSITIONS

    def _clause_after_pronoun(self, j: int) -> bool:
        """After "..., and behind him": does the clause go on at ``j`` (a verb, an article or,
        after a pronoun that is no possessive, a count), so the pronoun is the relation's
        object? "behind him came a man", "behind them an old man"; not "behind her dog"."""
        if self._ends_phrase(j):
            return True
        nxt, her = self.words[j], self.words[j - 1] == "her"
        return nxt in ("a", "an", "the") or (not her and tr.count_at(self.words, j) is not None) \
            or (gw.looks_like_verb(nxt) and not nxt.endswith("ing"))

    def _between_colors(self, i: int) -> bool:
        return (i > 0 and i + 1 < len(self.words) and bool(lx.normalize_color(self.words[i - 1]))
                and bool(lx.normalize_color(self.words[i + 1])))

    def _modifier(self, i: int) -> int:
        if self.chunk is None:
            self.chunk = _Chunk(i, i + 1)
        self.chunk.mods.append(self.words[i])
        self.chunk.end = i + 1
        return i + 1

    def _gap(self, word: str) -> None:
        """A word between phrases: drops a phrase that has no noun yet ("a soft, ...")."""
        self.chunk = None
        self.possessor = None
        verb = gw.looks_like_verb(word)
        self.rel.gap(verb=verb, finite=verb and not gw.is_participle(word))

    def _pronoun(self, word: str) -> None:
        """"a table with a vase on it", "a lamp hung above it"."""
        prep, self.prep = self.prep, None
        if prep is not None:
            kind = self._prep_kind(prep, "")
            if kind not in (None, "agent", "worn"):
                self.rel.open_relation(kind, prep[0], plain=True)
        self.rel.pronoun_object(word)

    def _count(self, i: int, count: int, used: int) -> int:
        ch = self.chunk
        if ch is not None and ch.nouns:
            self._flush()
            ch = None
        if ch is not None and ch.determined and ch.count is None and not ch.mods:
            ch.count, ch.end = count, i + used  # "the two cats", "the girl's two kites"
        else:
            self.chunk = _Chunk(i, i + used, count=count, determined=True)
            self.possessor = None  # "my daughter's birthday: a cake"
        return i + used

    def _read_of(self, i: int) -> bool:
        """"a vase of flowers" keeps one object; "an oil painting of" and "two pairs of" are
        no object. False when "of" just ends a phrase."""
        ch = self.chunk
        if ch is None:
            return False
        if ch.nouns and ch.tail is None:
            head = ch.nouns[-1]
            if head in nouns.STYLE_NOUNS:
                self.chunk = None  # "an oil painting of a cat": the cat is the object
            elif head in nouns.PART_NOUNS or head in lx.SCENE_NOUNS:
                self.chunk = self.prep = None  # "the roof of the church": the church
            else:
                self._add_tail(ch, i, i + 1)
            return True
        if not ch.nouns and ch.mods and lx.singularize(ch.mods[-1]) in tr.COLLECTIVES:
            size = tr.COLLECTIVES[lx.singularize(ch.mods.pop())]
            ch.count = size * (ch.count or 1) if size == 2 else (ch.count or size)
            ch.end = i + 1
            return True
        return False

    def _add_tail(self, ch: _Chunk, i: int, j: int) -> None:
        if ch.tail is None:
            ch.tail = []
        if len(ch.tail) + (j - i) <= MAX_PHRASE_WORDS:
            ch.tail += self.words[i:j]
        ch.end = j

    def _noun(self, i: int, label: str, used: int, possessive: bool) -> int:
        ch = self.chunk
        if ch is not None and ch.tail is not None:
            if not ch.tail_noun or ch.noun_end == i:
                self._add_tail(ch, i, i + used)
                ch.tail_noun, ch.noun_end = True, i + used
                return i + used
            self._flush()
            ch = None
        if ch is not None and ch.nouns and ch.noun_end != i:
            self._flush()
            ch = None
        if ch is None:
            ch = self.chunk = _Chunk(i, i + used)
        ch.nouns = (ch.nouns + [label])[-_MAX_RUN_NOUNS:]
        ch.noun_end = ch.end = i + used
        last = self.words[i + used - 1]
        ch.plural = lx.is_plural(last[:-2] if possessive else last)
        if possessive:  # "the girl's red kite": girl, then kite
            self.chunk, self.possessor = _Chunk(i + used, i + used, determined=True), ch
        return i + used

    # --- phrases become groups, backgrounds and relations ------------------------------------

    def _flush(self) -> None:
        ch, prep, possessor = self.chunk, self.prep, self.possessor
        self.chunk = self.prep = self.possessor = None
        if ch is None:
            return
        if ch.nouns and ch.determined:
            self.determined_end = ch.noun_end
        if not ch.nouns:
            if possessor is not None and ch.mods and self._owner_of_part(lx.singularize(ch.mods[-1]), ch):
                self._emit_possessor(possessor)  # "a customer's beard": the customer is there
                return
            label = self._unknown_noun(ch, after_prep=prep is not None)
            if label is not None and prep is None:
                self._emit(ch, label)
            elif label is not None:
                self._emit_after(ch, prep, possessor, label)  # "in an iron chest"
            return
        head = ch.nouns[-1]
        if head in lx.SCENE_NOUNS:
            if prep is not None or head not in nouns.TIME_NOUNS:  # "at night", not "one day"
                self.backgrounds.append(self._text(prep[1] if prep else ch.start, ch.end))
            return self.rel.drop_open()
        if head in nouns.STYLE_NOUNS and not self._framed_thing(ch):
            if self.rel.open and ch.count is None and ch.determined:
                return self.rel.open_as_hint()  # "on the bottom of the picture"
            if self.rel.fronted is not None and self.rel.fronted[2] is None \
                    and ch.count is None and ch.determined:
                return self.rel.fronted_as_hint()  # "On the left of the picture, a giraffe"
            return self.rel.drop_open()  # "digital painting", "a picture where ..."
        if head not in lx.OBJECT_NOUNS and head not in nouns.STYLE_NOUNS:
            if possessor is not None and self._owner_of_part(head, ch):
                self._emit_possessor(possessor)  # "a customer's beard": the customer is there
            return self.rel.drop_open()
        self._emit_after(ch, prep, possessor, head)

    def _emit_after(self, ch: _Chunk, prep: tuple[str, int] | None, possessor: _Chunk | None,
                    head: str) -> None:
        """Emit an object phrase, with the relation its preposition ("on", "in", "by") makes."""
        kind = self._prep_kind(prep, head) if prep is not None else None
        if kind == "agent":
            return  # "by a famous painter", "made by a child": who made it, not in it
        if kind == "worn":
            return self._attach_worn(prep[1], ch.end)
        if possessor is not None:
            self._emit_possessor(possessor)
        if kind is not None:
            self.rel.open_relation(kind, prep[0], conditional=True,
                                   clause_initial=self._clause_initial(prep[1]))
        self._emit(ch, head, via_preposition=prep is not None)

    def _owner_of_part(self, part: str, ch: _Chunk) -> bool:
        """Is ``part`` a body part that ends its phrase ("a customer's beard, ..."), so its
        owner is boxed in its place? Not when a relation or verb follows ("a man's hand on a
        table" would put the man on the table)."""
        j, words = ch.end, self.words
        return part in nouns.BODY_PART_NOUNS and (
            j >= len(words) or words[j] in ",;." or bool(
                tr.match(tr.COORDINATORS, words, j) or tr.match(tr.BREAKS, words, j)))

    def _emit_possessor(self, possessor: _Chunk) -> None:
        """"the girl's red kite": the girl is boxed too, without taking the kite's relation."""
        held, self.rel.open = self.rel.open, None
        self._emit(possessor, possessor.nouns[-1])
        self.rel.open = held

    def _framed_thing(self, ch: _Chunk) -> bool:
        """"a painting" next to a lamp is a thing; "a picture where ...", "a digital
        painting" or "the picture" are the medium."""
        nxt = self.words[ch.end] if ch.end < len(self.words) else ""
        return (ch.nouns[-1] in nouns.FRAMED_STYLE_NOUNS and ch.count is not None
                and not ch.mods and len(ch.nouns) == 1 and ch.tail is None
                and nxt not in _MEDIUM_FOLLOWERS)

    def _prep_kind(self, prep: tuple[str, int], head: str) -> str | None:
        word, at = prep
        if word in ("on", "onto", "upon"):
            return "above"
        if word in ("in", "into"):
            if not head or lx.is_container(head):
                return "inside"
            if word == "into":
                return None  # "bumped into the sofa": a motion, not a place
            return "worn" if head in lx.CLOTHING else "near"
        if word == "by":  # "painted by a child", ", by a famous painter": who, not where
            before = self.words[at - 1] if at > 0 else ","
            if before in ",;." or before in nouns.MAKING_VERBS or head in nouns.MAKER_NOUNS:
                return "agent"
            return None if before.endswith("ed") else "next_to"  # "chased by a dog"
        return "near"  # "at the table"

    def _attach_worn(self, start: int, end: int) -> None:
        """"a woman in a red dress": the dress describes the woman's box."""
        groups = self.rel.groups
        if groups and len(groups) - 1 >= self.rel.clause_first:
            g = groups[-1]
            groups[-1] = replace(g, phrase=clip_phrase(f"{g.phrase} {self._text(start, end)}"))

    def _unknown_noun(self, ch: _Chunk, *, after_prep: bool = False) -> str | None:
        """"two zorbs", "a zorb next to a blorp": a bare word after a count, at a phrase end,
        with a stated number or a relation phrase beside it; else None. After a preposition
        ("in", "on", ``after_prep``) only the head of a compound with a known noun ("in an iron
        chest"; not "in a hurry")."""
        j, words = ch.end, self.words
        if ch.count is None or not ch.mods or (j < len(words) and not (
                tr.match(tr.RELATIONS, words, j) or tr.match(tr.COORDINATORS, words, j)
                or tr.match(tr.BREAKS, words, j) or words[j] in gw.CONDITIONAL_PREPOSITIONS)):
            return None
        *before, word = ch.mods
        if any(not lx.normalize_color(b) and b not in lx.KNOWN_NOUNS for b in before) \
                or not tr.may_be_unknown_noun(word):
            return None
        compound = any(b in lx.KNOWN_NOUNS for b in before)
        if after_prep and not compound:
            return None
        next_is_relation = j < len(words) and tr.match(tr.RELATIONS, words, j) is not None
        if ch.count < 2 and not (self.rel.open or next_is_relation or after_prep):
            return None
        return lx.singularize(word)

    def _emit(self, ch: _Chunk, label: str, *, via_preposition: bool = False) -> None:
        count = ch.count if ch.count is not None else (2 if ch.plural else 1)
        if count == 0:
            self.rel.notes.append(f"skipped '{label}': count 0")
            return
        if count > lx.MAX_COUNT:
            self.rel.notes.append(f"count {count} of '{label}' clamped to {lx.MAX_COUNT}")
            count = lx.MAX_COUNT
        if len(self.rel.groups) >= MAX_GROUPS:
            if not self.dropped:
                self.rel.notes.append(f"objects after the first {MAX_GROUPS} ignored")
            self.dropped += 1
            self.rel.open = None
            return
        mods = list(ch.mods) + ch.nouns[:-1] if ch.nouns else list(ch.mods)[:-1]
        color = next((c for c in map(lx.normalize_color, mods) if c), None)
        body = " ".join(mods[-MAX_PHRASE_WORDS:] + [label] + (ch.tail or []))
        article = "an" if body[0] in "aeiou" else "a"
        group = ObjectGroup(label=label, count=count, color=color,
                            phrase=clip_phrase(f"{article} {body}"))
        earlier = self._antecedent(ch, label)
        if earlier is not None:
            self.rel.mention(earlier)
            return
        self.rel.add(group, via_preposition=via_preposition)

    def _antecedent(self, ch: _Chunk, label: str) -> int | None:
        """"a fireplace ... in front of the fireplace": a definite phrase ("the", "this",
        "these", no count) naming an earlier group's label, or the head of its compound ("a
        pickup truck ... the truck"), in the same number, is that group, not a new one."""
        if ch.count is not None or self.words[ch.start] not in _DEFINITE:
            return None
        for g in range(len(self.rel.groups) - 1, -1, -1):
            group = self.rel.groups[g]
            if (group.label == label or group.label.endswith(" " + label)) \
                    and (group.count > 1) == ch.plural:
                return g
        return None

    def _text(self, start: int, end: int) -> str:
        return self.text[self.spans[start][0]:self.spans[end - 1][1]].strip(" ,;.")
