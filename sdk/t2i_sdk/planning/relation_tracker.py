"""Who a relation phrase is about: the groups read so far, their clause roles, the relations.

The chunker reports each object group and each relation phrase in prompt order; this class
picks the relation's subjects and object:

- listed groups share it: "a cat and a dog left of a car" (both left of the car), and "X above
  A and B" puts X above both;
- a chain continues from the last object: "a cup on a table left of a chair" (table left of
  chair), but after a verb or a comma from the first subject: "the bear sat on the shelf,
  next to three books" (bear next to books);
- a verb's or a "with" object is skipped for the clause's subject: "a woman holding an
  umbrella stands next to a car" (woman next to car);
- a fronted relation takes the next group as its object and the one after as its subject:
  "Behind the barn, four horses ..." (horses behind barn); after ", and" too, with a pronoun
  as its object: "..., and behind him came a man" (man behind him);
- a new subject opens a clause: a group after a comma with a verb of its own ("a starfish
  clung to the glass, an octopus hid inside a pot") or after ", and" that ends a clause whose
  verb boxed no object ("the boats are tied up by the pier, and gulls circle above them");
- "it" / "them" / "her" after a relation phrase is the last fitting group before the subject.
"""
from __future__ import annotations

from dataclasses import dataclass

from t2i_sdk.planning import nouns
from t2i_sdk.planning.parsed_prompt import ObjectGroup, SpatialRelation

_OPPOSITE_HINTS = (("left", "left_of", "right"), ("top", "above", "bottom"),
                   ("front", "in_front_of", "back"))
_HINT_OF_KIND = {"left_of": "left", "right_of": "right", "above": "top", "below": "bottom",
                 "in_front_of": "front", "behind": "back"}
PRONOUN_OBJECTS = frozenset(("it", "them", "her", "him"))
_LIVING_WORDS = frozenset(nouns.PEOPLE) | frozenset(nouns.ANIMALS)


@dataclass(frozen=True)
class GroupRole:
    joined: bool  # listed with the group before it ("a cat and a dog")
    tight: bool  # listed without a comma ("A and B", not "A, and B")
    new_clause: bool  # after ", and": "X was holding Y, and Z was running ..."
    after_verb: bool  # a verb's object ("holding an umbrella")
    after_with: bool  # "a snowman with a carrot nose": an attribute of the group before
    via_preposition: bool  # reached by "on" / "in" / "at": a support or setting


@dataclass
class _Open:
    """A relation phrase waiting for its object."""

    kind: str
    phrase: str
    subjects: list  # group indices; empty for a fronted relation
    verbal: bool  # a verb or a comma stood between the subject and the phrase


class RelationTracker:
    def __init__(self) -> None:
        self.groups: list[ObjectGroup] = []
        self.roles: list[GroupRole] = []
        self.relations: list[SpatialRelation] = []
        self._seen: set[tuple[int, str, int]] = set()  # a repeated relation is kept once
        self.notes: list[str] = []
        self.hints: dict[int, str] = {}  # group -> absolute position ("left", "top", ...)
        self.open: _Open | None = None
        # (kind, phrase, anchor, first subject): "Behind the barn, four horses ..."
        self.fronted: tuple[str, str, int | None, int] | None = None
        self.last: _Open | None = None  # the last completed relation
        self.last_object = -1
        self.last_next = -1  # the group index a list continuing the last object would get
        self.clause_first = 0  # first group of the current clause
        self.clause_start = 0  # first group a coming relation may take as its subject
        self.joined = self.comma = self.verb_gap = self.with_gap = False
        self.and_word = self.finite_gap = False  # finite: "stands", not "standing"
        # "the boats are tied up by the pier, and seagulls ...": a list word after a verb whose
        # clause boxed no object, so the next group opens a clause
        self.verb_listed = False
        self.extended: dict[int, list[SpatialRelation]] = {}  # "X above A and B": B's
        # "the fireplace" again: the earlier group, as the subject of what follows
        self.mentioned: int | None = None
        self.last_it: int | None = None  # the group "it" last stood for, in this clause
        self.anchors: set[int] = set()  # groups that are a relation's object
        self.placed: set[int] = set()  # groups that are a relation's subject
        self.pending_hint: str | None = None  # "on the right a zebra": the next group's place

    # --- events from the chunker --------------------------------------------------------------

    def list_word(self, word: str) -> None:
        if self.verb_gap and word in (",", "and"):
            self.verb_listed = True
            if word == ",":  # "parked beside a tall zorb, and ...": its object was not boxed
                self.drop_open()
        self.joined = not self.verb_gap
        self.comma = self.comma or word == ","
        self.and_word = self.and_word or word == "and"

    def gap(self, *, verb: bool, with_word: bool = False, finite: bool = False) -> None:
        if verb and not self.verb_gap and not self.with_gap:
            self._comma_clause()
        self.verb_listed = self.verb_listed and not verb  # "holding and feeding a lamb"
        self.joined = False
        self.verb_gap = self.verb_gap or verb
        self.finite_gap = self.finite_gap or finite
        self.with_gap = self.with_gap or with_word

    def _comma_clause(self) -> None:
        """"a starfish clung to the glass, an octopus hid inside a pot": a group listed after a
        comma and followed by its own verb, in a clause that already has a verb or a relation,
        is the subject of a new clause (the octopus is inside the pot, not the starfish). "a
        cat, a dog and a bird sit by a car" stays one list."""
        g = len(self.groups) - 1
        if g <= self.clause_first or not self.roles[g].joined or self.roles[g].tight:
            return
        if any(self.roles[k].after_verb for k in range(self.clause_first, g)) \
                or any(self.clause_first <= r.subject < g for r in self.relations):
            self.clause_first = self.clause_start = g

    def _verb_clause_end(self) -> None:
        """"five boats are tied up beside a pier, and seagulls are circling above them": the
        seagulls are no object of "tied up" but the subject of a new clause."""
        self.clause_first = self.clause_start = len(self.groups)
        self.verb_gap = self.finite_gap = self.verb_listed = False

    def clause_end(self) -> None:
        self.drop_open()
        self.flush_hint()
        self.fronted = self.mentioned = self.last_it = None
        self.clause_first = self.clause_start = len(self.groups)
        self.joined = self.comma = self.verb_gap = self.with_gap = self.verb_listed = False

    def drop_open(self) -> None:
        if self.open is not None and self.open.subjects:
            self.notes.append(f"relation '{self.open.phrase}' has no object; ignored")
        self.open = None

    def open_as_hint(self) -> None:
        """"a boat on the bottom of the picture": a place in the image, not a relation."""
        op, self.open = self.open, None
        position = _HINT_OF_KIND.get(op.kind) if op is not None else None
        if position is not None:
            for s in op.subjects:
                self.hints[s] = position

    def fronted_as_hint(self) -> None:
        """"On the left of the picture there's a giraffe": a place for the next group."""
        kind = self.fronted[0] if self.fronted is not None else ""
        self.fronted = None
        self.pending_hint = _HINT_OF_KIND.get(kind)

    def flush_hint(self) -> None:
        """A place said last with nothing after it ("a bird, on the right") is the last
        group's."""
        if self.pending_hint is not None:
            self.hint(self.pending_hint)
            self.pending_hint = None

    def hint(self, position: str) -> None:
        if self.groups:
            self.hints[len(self.groups) - 1] = position

    def open_relation(self, kind: str, phrase: str, *, conditional: bool = False,
                      plain: bool = False, clause_initial: bool = True) -> None:
        """A relation phrase; ``conditional``: a preposition such as "on" ("a box on the
        desk" is about the box even after "inside a box"); ``plain``: the last listed
        groups are the subjects, whatever came before ("with a vase on it");
        ``clause_initial``: the phrase opens its clause, so with no subject yet it is fronted
        ("Behind the barn, four horses"), not a verb's particle ("... knocking over a tower").
        After ", and" it is fronted too: "..., and behind him came a man" (the man is behind)."""
        after_comma_and = clause_initial and self.comma and self.and_word
        subjects = [] if after_comma_and else self._subjects(conditional=conditional, plain=plain)
        verbal = self.verb_gap or self.comma
        self.verb_listed = False  # "a cat sleeping, next to a dog": the list word led here
        for s in subjects:  # "... and two armchairs in front of it": no shared object
            for r in self.extended.pop(s, ()):
                self.relations.remove(r)
                self._seen.discard((r.subject, r.kind, r.object))
        if after_comma_and or not subjects and len(self.groups) == self.clause_first \
                and clause_initial:
            self.fronted = (kind, phrase, None, 0)  # "Behind the red barn, four horses ..."
            self.clause_first = self.clause_start = len(self.groups)
            self.open = None
            return
        self.open = _Open(kind, phrase, subjects, verbal) if subjects else None

    def pronoun_object(self, word: str) -> None:
        """"a lamp hung above it": the object is the last fitting group before the last
        subject ("a cake and a teddy bear next to it": the bear next to the cake)."""
        op = self.open
        self.gap(verb=False)
        if op is None and self.awaits_anchor():
            return self._fronted_pronoun(word)
        if op is None or not op.subjects:
            return
        op.subjects = self._subjects(conditional=False, plain=True) or op.subjects
        self._refer_back(op, word)

    def awaits_anchor(self) -> bool:
        """Was a fronted relation phrase read, but not yet its object?"""
        return self.fronted is not None and self.fronted[2] is None

    def _fronted_pronoun(self, word: str) -> None:
        """"..., and behind him came a man": the fronted relation's object is the last group
        that fits the pronoun; else, for "it", the last single group ("jars stood on the stall,
        and behind it a beekeeper ...": the stall), for "him" / "her" the last single group
        that is no verb's or "with" object."""
        n = len(self.groups)
        anchor = next((g for g in range(n - 1, -1, -1) if self._fits_pronoun(g, word)), None)
        if anchor is None and word != "them":
            anchor = next((g for g in range(n - 1, -1, -1) if self.groups[g].count == 1 and (
                word == "it" or not (self.roles[g].after_verb or self.roles[g].after_with))), None)
        if anchor is None:
            self.fronted = None
            return
        kind, phrase, _, _ = self.fronted
        self.fronted = (kind, phrase, anchor, n)
        self.clause_start = n

    def _refer_back(self, op: _Open, word: str) -> bool:
        """The pronoun's group: the last fitting one before the last subject, except that
        - "a blanket with a basket and three sandwiches on it": a list after "with" rests on
          (or is in) the group before "with";
        - "an armchair, a lamp behind it and a table next to it": a second "it" in a clause is
          the first one's group;
        - "the sleigh was parked next to the chimney, and the reindeer waited in front of
          it": after a verb, a group that was only a relation's object is passed over for
          the one before it."""
        first = min(op.subjects)
        if op.kind in ("above", "inside") and first > 0 and self.roles[first].after_with \
                and all(s == first or self.roles[s].joined for s in op.subjects) \
                and self._fits_pronoun(first - 1, word):
            return self._refer_to(op, first - 1, word)
        fitting = [g for g in range(max(op.subjects) - 1, -1, -1) if self._fits_pronoun(g, word)]
        if not fitting:
            return self._refer_back_loosely(op, word, first)
        pick = fitting[0]
        if word == "it" and self.last_it in fitting:
            pick = self.last_it
        elif op.verbal:
            pick = next((g for g in fitting if g not in self.anchors), pick)
        op.subjects = [s for s in op.subjects if s > pick] or op.subjects
        return self._refer_to(op, pick, word)

    def _refer_back_loosely(self, op: _Open, word: str, first: int) -> bool:
        """No group fits the pronoun's number or kind: "a snail on a mushroom, with a
        dragonfly hovering above them" (two single groups: both), "the plumber ..., and his
        toolbox sat next to him" (a person the lexicon does not list as living: the nearest
        single group that is a clause's subject, not a verb's object, "with" attribute or
        place)."""
        if word == "them" and first >= 2:
            for s in op.subjects:
                self._add_relation(SpatialRelation(s, op.kind, first - 2, op.phrase))
            self._relate(op, first - 1)
            return True
        if word in ("him", "her"):
            subject = next((g for g in range(first - 1, -1, -1) if self.groups[g].count == 1
                            and not (self.roles[g].after_with or self.roles[g].after_verb
                                     or self.roles[g].via_preposition)), None)
            if subject is not None:
                return self._refer_to(op, subject, word)
        self.drop_open()
        return False

    def _refer_to(self, op: _Open, g: int, word: str) -> bool:
        self._relate(op, g)
        if word == "it":
            self.last_it = g
        return True

    def bare_relation_end(self) -> None:
        """"looking for two mice below": a relation word with no object points back at the
        scene's earlier object (the hawk)."""
        op = self.open
        if op is not None and op.subjects and " " not in op.phrase:
            self._refer_back(op, "it")

    def add(self, group: ObjectGroup, *, via_preposition: bool) -> int:
        """Record ``group``; complete the open relation with it. Returns its index."""
        new = len(self.groups)
        if self.verb_listed:
            self._verb_clause_end()
        tight = self.joined and not self.comma
        self.groups.append(group)
        self.roles.append(GroupRole(joined=self.joined, tight=tight,
                                    new_clause=self.joined and self.comma and self.and_word,
                                    after_verb=self.verb_gap, after_with=self.with_gap,
                                    via_preposition=via_preposition))
        self.joined = self.comma = self.verb_gap = self.with_gap = self.and_word = False
        self.finite_gap = False
        self.mentioned = None
        if self.pending_hint is not None:
            self.hints[new] = self.pending_hint
            self.pending_hint = None
        if self.open is not None:
            self._relate(self.open, new)
        elif tight and self.last is not None and self.last_next == new:
            before = len(self.relations)
            self._relate(self.last, new, keep_clause=True)  # "X above A and B"
            self.extended[new] = self.relations[before:]
        self._fronted_step(new)
        return new

    def mention(self, g: int) -> None:
        """"the fireplace" again, after "a fireplace": no new group; the open relation (or a
        fronted one) takes group ``g`` as its object, or ``g`` is the subject of the next."""
        self.joined = self.comma = self.verb_gap = self.with_gap = self.and_word = False
        self.verb_listed = False
        if self.open is not None:
            self._relate(self.open, g)
            self.clause_start = len(self.groups)
            self.last_next = len(self.groups)
            self.mentioned = None
            return
        if self.fronted is not None and self.fronted[2] is None:
            kind, phrase, _, _ = self.fronted
            self.fronted = (kind, phrase, g, len(self.groups))
            self.clause_start = len(self.groups)
            return
        self.mentioned = g

    # --- helpers ---------------------------------------------------------------------------

    def _relate(self, op: _Open, obj: int, *, keep_clause: bool = False) -> None:
        for s in op.subjects:
            if s != obj:
                self._add_relation(SpatialRelation(s, op.kind, obj, op.phrase))
        self.open = None
        self.last, self.last_object, self.last_next = op, obj, obj + 1
        if not keep_clause:
            self.clause_start = max(self.clause_start, obj + 1)

    def _fronted_step(self, new: int) -> None:
        if self.fronted is None:
            return
        kind, phrase, anchor, first = self.fronted
        if anchor is None:
            self.fronted = (kind, phrase, new, new + 1)
            self.clause_start = new + 1
        elif new == first or self.roles[new].joined:
            self._add_relation(SpatialRelation(new, kind, anchor, phrase))
        else:
            self.fronted = None

    def _subjects(self, *, conditional: bool, plain: bool) -> list[int]:
        last = len(self.groups) - 1
        if last < 0:
            return []
        if self.mentioned is not None:
            return [self.mentioned]
        if last < self.clause_start:  # a chain: "A above B left of C"
            verbal = self.last is not None and (self.last.verbal or self.verb_gap)
            if self.last is not None and (self.comma or verbal and not conditional):
                return list(self.last.subjects)
            return [last] if last >= self.clause_first else []
        first = last
        # "a lamp behind it and books on the table": a listed group that already has its own
        # relation does not share the next one
        while first > self.clause_start and self.roles[first].joined and not (
                self.verb_gap and self.roles[first].new_clause) and first - 1 not in self.placed:
            first -= 1
        role = self.roles[first]
        if role.after_with and self.verb_gap and not self.finite_gap and not self.comma:
            # "with the other slipper hidden under the couch": the slipper is hidden
            return list(range(first, last + 1))
        # a verb's object followed by another verb is no subject, even before a pronoun: "a
        # farmer pushing a wheelbarrow followed behind them" (the farmer is behind them)
        if first > self.clause_start and (role.after_verb and self.verb_gap or not plain and (
                role.after_with or role.after_verb and self.comma)):
            return self._listed_from(self.clause_start, last)
        return list(range(first, last + 1))

    def _listed_from(self, first: int, last: int) -> list[int]:
        end = first + 1
        while end <= last and self.roles[end].joined:
            end += 1
        return list(range(first, end))

    def _fits_pronoun(self, g: int, word: str) -> bool:
        group = self.groups[g]
        if word == "them":
            return group.count > 1
        if word in ("her", "him"):
            return group.count == 1 and group.label in _LIVING_WORDS
        return group.count == 1 and not self.roles[g].via_preposition

    def relate_hints(self) -> None:
        """"X on the left ... Y on the right" -> X left of Y (and top/bottom -> above)."""
        self.flush_hint()
        for first, kind, second in _OPPOSITE_HINTS:
            subjects = [g for g, h in self.hints.items() if h == first]
            objects = [g for g, h in self.hints.items() if h == second]
            for a in subjects:
                for b in objects:
                    self._add_relation(SpatialRelation(a, kind, b, f"{first}/{second}"))

    def _add_relation(self, r: SpatialRelation) -> None:
        key = (r.subject, r.kind, r.object)
        if key not in self._seen:
            self._seen.add(key)
            self.anchors.add(r.object)
            self.placed.add(r.subject)
            self.relations.append(r)
