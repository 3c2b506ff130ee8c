"""Build ``sdk/t2i_sdk/planning/data/object_nouns.csv``: object nouns from public detection sets.

The rule planner boxes only nouns it knows. Its hand lexicon (``planning/nouns.py``, ~800
words) misses many everyday things, so this script adds the category names of three public
object-detection vocabularies, chosen blind (no prompt set was read to pick or drop a word):

  - LVIS v1 (1203 categories with synonyms; CC BY 4.0, lvisdataset.org),
  - Objects365 (365 categories; CC BY 4.0, objects365.org),
  - Open Images V7 boxable classes (601; CC BY 4.0, storage.googleapis.com/openimages).

Input: a folder holding ``lvis.yaml``, ``Objects365.yaml`` and ``open-images-v7.yaml`` as the
ultralytics wheel ships them in ``ultralytics/cfg/datasets/`` (checked with ultralytics 8.4.190,
``pip download --no-deps ultralytics==8.4.190``; only the class-name lists are read). No
network. ``python benchmarks/planner/build_object_nouns.py DIR`` rewrites the csv;
``--check`` only says whether the committed csv is what DIR gives.

Rules, in order (each name is a category name or one of its synonyms):

 1. Names. A category's synonyms are split at "/"; Open Images "(...)" disambiguators are
    dropped ("Bat (Animal)" -> "bat"); lower case, "_" as space. ``FIXES`` mends a few
    Objects365 spellings ("noddles"); Objects365's "Other X" is X. LVIS disambiguators, which
    ultralytics writes as the synonym plus words ("bat/bat animal", "pan/pan for cooking"), are
    dropped: a synonym that is another synonym of the same category plus more words goes.
 2. Dropped forms: names with a digit, "&" or " and " (lists, "salt and pepper shakers"),
    or characters other than letters, space, "-" and "'"; Open Images "Human ..." (body parts).
 3. Number. The planner stores singular labels (``lexicon.singularize``). Objects365 writes
    plurals ("Sneakers") and is made singular; LVIS and Open Images write singulars, so a
    plural-looking name there stays as written (plural-only things: "tongs", "pliers") unless
    its singular is also a name (LVIS "egg/eggs" -> "egg"). A multi-word name gets the last
    word the planner's singularize gives ("brussels sprouts" -> "brussels sprout"), so the
    chunker's compound match finds it in both numbers.
 4. Variants: a hyphenated name also gets its spaced form ("hot-air balloon"); a closed
    compound new to the hand lexicon that splits into a word used in the vocabularies or the
    hand lexicon (3+ letters) and a single-word object noun (4+ letters) also gets its open
    form ("highchair" -> "high chair", "fishbowl" -> "fish bowl").
 5. Descriptive modifiers are no part of a label (the evaluation sets' labelling rule:
    "oak tree" -> tree, "koi fish" -> fish): a multi-word name is dropped when its first word
    is a colour or in ``DESCRIPTIVE_FIRST_WORDS`` (materials, participles, size, age and room
    words: "wooden spoon", "boiled egg", "black sheep", "kitchen sink"), or when it names a
    kind of an animal of the hand lexicon ("pug dog", "harbor seal"). Its last word is kept
    instead when it passes the other rules ("blue jay" -> jay).
 6. Not objects to the planner: the hand lexicon's scene, part, style, time and collective
    nouns, its NOT_OBJECTS, colours, count and grammar words (a scene noun boxed would stop
    being a background; "a pack of wolves" would box a pack); names that begin with a count
    word ("one dollar bill": "one" is read as a count); and the LLM planner's few-shot
    example labels (``llm_examples.EXAMPLE_LABELS``: they must stay unknown words so a copied
    example is caught).
 7. ``STOPLIST``: words that in prompt English are mostly not a separate object (adjectives
    "cooler", "crisp"; materials "leather"; body parts "leg"; umbrella classes "clothing",
    "food"; sports "tennis"; abstract "award", "money"; drinks, which are a glass's contents
    or a modifier: "a tea party"). Judged word by word from the vocabularies alone.
 8. ``AMBIGUOUS``: kept, but boxed only after a count word, determiner, colour or other
    modifier (the lexicon's AMBIGUOUS_NOUNS): nouns that are common verbs ("drill", "mop") and
    mass foods ("rice", "honey"): "he likes to mop the floor" boxes no mop, "a mop" boxes one.
 9. Roles as the hand lexicon's: ``worn`` (a garment, "a woman in a blouse" describes the
    woman) and ``container`` ("a cat in a hamper" is inside it): a multi-word name by its last
    word (in the hand CLOTHING / CONTAINERS) unless listed in ``NO_ROLE`` ("seat belt"), a
    single word by ``WORN`` / ``CONTAINERS``.
10. Number checks: a new word that would take another noun's plural is dropped ("cooky" made
    "cookies" read as "cooky"), and so is a compound whose last word the planner would read
    as a plural ("eye glasses").

Output: ``noun,role,ambiguous,sources`` sorted by noun; role one of object, worn, container;
ambiguous 1 for rule 8 words; sources the vocabularies naming it (lvis, o365, oi), "variant"
for a rule 4 form, "head" for a rule 5 head.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import types
from pathlib import Path

# The planner's lexicon reads the csv this script writes: give it an empty vocabulary, so the
# build sees the hand lexicon alone and does not depend on (or choke on) the current csv.
_empty = types.ModuleType("t2i_sdk.planning.object_vocabulary")
_empty.VOCABULARY = {k: frozenset() for k in ("object", "worn", "container", "ambiguous")}
_empty.EXTERNAL_NOUNS = frozenset()
sys.modules[_empty.__name__] = _empty

from t2i_sdk.layout import BASIC_COLORS  # noqa: E402
from t2i_sdk.planning import grammar_words as gw  # noqa: E402
from t2i_sdk.planning import lexicon as lx  # noqa: E402
from t2i_sdk.planning import nouns  # noqa: E402
from t2i_sdk.planning.llm_examples import EXAMPLE_LABELS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "sdk" / "t2i_sdk" / "planning" / "data" / "object_nouns.csv"
SOURCES = (("lvis", "lvis.yaml"), ("o365", "Objects365.yaml"), ("oi", "open-images-v7.yaml"))

FIXES = {  # Objects365 spellings and a slash that splits a compound
    "noddles": "noodles", "trash bin can": "trash bin/trash can", "head phone": "headphone",
    "cutting/chopping board": "cutting board/chopping board", "skiboard": "ski board",
}
MATERIALS = frozenset((
    "wooden", "wood", "plastic", "leather", "metal", "bronze", "brass", "steel", "stone",
    "rubber", "silk", "wax", "clay", "earthenware", "golden", "gold", "silver", "chocolate",
))
# Rule 5: first words that describe the thing rather than name its kind.
DESCRIPTIVE_FIRST_WORDS = MATERIALS | frozenset((
    # participles
    "boiled", "coddled", "mashed", "stuffed", "whipped", "horned", "armored", "articulated",
    "potted", "corded", "soured", "baked", "jet-propelled",
    # size, age, power and room words
    "wild", "common", "heavy", "electric", "digital", "small", "mini", "big", "giant",
    "little", "old", "young", "edible", "automatic", "fresh", "dried", "hard", "soft",
    "plain", "human", "domestic", "kitchen", "wall", "short", "tin",
))
# Rule 7: mostly not a separate object in prompt English.
STOPLIST = frozenset((
    # adjectives, comparatives, names and words of other parts of speech
    "arctic", "aerial", "auto", "human", "good", "french", "canned", "chilly", "chile",
    "cooler", "lighter", "warmer", "cleaner", "crisp", "cordial", "billiard", "derby", "patty",
    "jean", "specs", "spirits", "tonic", "pop", "chap", "cock", "ass", "ail", "lavender",
    "curling", "piping", "boxers",
    # abstract, or a part of something else
    "award", "accolade", "milestone", "money", "medicine", "register", "range", "record",
    "control", "instrument", "target", "cover", "spread", "post", "pad", "flap", "fin",
    "rib", "leg", "horn", "collar", "handle", "grip", "cast", "band", "bun", "roll", "date",
    "flash", "plume", "organ", "outlet", "mound", "muzzle", "gag", "stairs", "poker",
    "converter", "extractor", "blinder", "blinker", "flasher", "bob", "bobber", "bobfloat",
    "batter", "spray", "bolt", "scale", "shower", "lounge",
    # light and colour words of art prompts ("muted palette", "dramatic spotlight")
    "palette", "spotlight",
    # materials and stuff with no one shape
    "leather", "fleece", "flannel", "denim", "tartan", "plaid", "rubber", "paper", "tinfoil",
    "garbage", "cleanser", "detergent", "gargle", "mouthwash", "alcohol", "grits",
    # drinks: the contents of a glass ("a glass of milk": the glass) or a modifier ("a tea
    # party", "a wine cellar"), rarely a thing of their own; "jam" is mostly traffic
    "beer", "wine", "coffee", "tea", "milk", "juice", "soda", "lemonade", "liquor",
    "liqueur", "vodka", "tequila", "cider", "cyder", "cocoa", "jam",
    # umbrella classes (Open Images, Objects365) and sports
    "clothing", "food", "footwear", "furniture", "fast food", "personal care",
    "office supply", "sports equipment", "fashion accessory", "bathroom accessory",
    "auto part", "cleaning product", "dairy product", "coloring material", "cleansing agent",
    "medical equipment", "hiking equipment", "bowling equipment", "marine invertebrate",
    "marine mammal", "plumbing fixture", "alcoholic beverage", "athletic wear", "toiletry",
    "soccer", "tennis", "table tennis",
))
# Rule 8: verbs and mass nouns, boxed only after a count word, determiner or modifier.
AMBIGUOUS = frozenset((
    "bait", "lure", "bomb", "bust", "chip", "clip", "coil", "cue", "die", "drill",
    "file", "fiddle", "grill", "hamper", "hook", "hurdle", "mixer", "mop", "nail", "paddle",
    "pin", "plough", "plow", "pole", "prune", "ram", "recorder", "reel", "ruler", "sail",
    "slide", "sling", "squash", "tag", "tap", "tape", "tick", "toast", "whistle",
    "convertible", "thread", "yarn", "straw", "ginger", "salmon", "cream", "tart",
    "baseball", "football", "softball", "volleyball",
    # foods named as stuff
    "rice", "pasta", "stew", "salsa", "honey", "seafood", "vinegar", "tofu", "yogurt",
    "yoghurt", "yoghourt", "soymilk", "crabmeat", "maize", "cayenne", "maple", "butter",
    "jelly", "gelatin", "fudge", "beef", "ham", "gammon", "cornmeal", "applesauce",
    "coleslaw", "slaw", "guacamole", "hummus", "snack", "dessert", "pottery", "bamboo",
))
# Rule 9: garments ("a man in a poncho" describes the man) and things to be in.
WORN = frozenset((
    "activewear", "anorak", "bandana", "bandanna", "bandeau", "bathrobe", "belt", "beret",
    "bib", "blazer", "blouse", "bonnet", "bra", "brassiere", "breechcloth", "breechclout",
    "cape", "cardigan", "choker", "cincture", "cloak", "corset", "coverall", "eyepatch",
    "facemask", "fedora", "frock", "galosh", "girdle", "golosh", "gumshoe", "hairnet",
    "headband", "headscarf", "jersey", "jumpsuit", "kilt", "legging", "leging", "leotards",
    "loincloth", "miniskirt", "mitten", "neckband", "neckerchief", "nightclothes",
    "nightshirt", "nightwear", "pajamas", "pantyhose", "parka", "poncho", "pyjamas", "sash",
    "shawl", "skullcap", "sleepwear", "slipper", "sombrero", "sportswear", "sunhat",
    "sweatband", "sweatshirt", "swimwear", "t-shirt", "tights", "trousers", "turban",
    "turtleneck", "tutu", "tux", "underclothes", "underclothing", "underdrawers",
    "underpants", "underwear", "veil", "vest", "visor", "vizor", "waistband", "waistcloth",
    "waistcoat", "wig", "wristband", "wristlet", "boxershorts", "flip-flop", "bowler",
    "tank top", "halter top", "polo neck", "wet suit", "bathing trunk", "swimming trunk",
))
CONTAINERS = frozenset((
    "basin", "birdcage", "canister", "cask", "casserole", "chalice", "cistern", "closet",
    "coffeepot", "colander", "dumpster", "dustbin", "fishbowl", "flask", "flowerpot",
    "hatbox", "keg", "locker", "pail", "pouch", "saucepan", "satchel", "skillet", "teacup",
    "teakettle", "toolbox", "trough", "urn", "vat", "wastebin", "washbasin", "wineglass",
    "wok", "matchbox", "breadbox", "birdbath", "manger", "knapsack", "rucksack", "haversack",
    "packsack", "briefcase", "playpen", "dollhouse", "doghouse", "pram", "perambulator",
    "wheelbarrow", "barrow", "handcart", "pushcart", "trolley", "golfcart", "jacuzzi",
    "minivan", "cab", "taxicab", "lorry", "camper", "dinghy", "rowboat", "ferry",
    "ferryboat", "houseboat", "gondola", "barge", "rickshaw", "stagecoach", "hydroplane",
    "seaplane", "container", "hamper", "cooker", "dishwasher", "aquarium",
))
# Named by a garment's or container's word but neither: "seat belt", "license plate".
NO_ROLE = frozenset((
    "air sock", "wind sock", "bottle cap", "seat belt", "life belt", "license plate",
    "vehicle registration plate", "home plate", "hot plate", "hand glass", "field glass",
    "opera glass", "pipe bowl", "punching bag", "tea bag", "baseball glove",
))


def read_names(path: Path) -> list[str]:
    """The ``names:`` block of an ultralytics dataset yaml, in index order."""
    names, started = [], False
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("names:"):
            started = True
            continue
        if started:
            m = re.match(r"^\s+(\d+):\s*(.+?)\s*$", line)
            if not m:
                break
            names.append(m.group(2).strip("'\""))
    if not names:
        raise SystemExit(f"{path}: no names: block")
    return names


def synonyms(name: str, source: str) -> list[str]:
    """Rules 1-2: one category -> its usable lower-case synonyms."""
    name = re.sub(r"\s*\([^)]*\)", "", name).lower().replace("_", " ")
    name = FIXES.get(name, name)
    syns = [re.sub(r"\s+", " ", s).strip() for s in name.split("/")]
    syns = [s[len("other "):] if source == "o365" and s.startswith("other ") else s
            for s in syns]
    keep = []
    for s in syns:
        if any(t != s and s.startswith(t + " ") for t in syns):
            continue  # "bat animal", "pan for cooking": a disambiguated twin
        if not s or re.search(r"[^a-z' -]", s) or " and " in f" {s} " or s in keep:
            continue
        if source == "oi" and s.startswith("human "):
            continue
        keep.append(s)
    return keep


def build(folder: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """(kept noun -> sources, dropped name -> reason) from the three yamls in ``folder``."""
    raw: dict[str, set[str]] = {}  # name as written -> sources
    for source, file in SOURCES:
        for name in read_names(folder / file):
            for s in synonyms(name, source):
                raw.setdefault(s, set()).add(source)
    hand, written = lx.HAND_KNOWN_NOUNS, set(raw)
    entries: dict[str, set[str]] = {}
    # Rule 3, single words first: they decide which words the planner will know.
    for name, srcs in raw.items():
        if " " not in name:
            sing = lx.singularize(name, frozenset())
            if sing != name and (srcs == {"o365"} or sing in written or sing in hand):
                name = sing  # "sneakers" -> "sneaker", "eggs" -> "egg"; "tongs" stays
            entries.setdefault(name, set()).update(srcs)
    dropped = {n: why for n in entries if (why := drop_reason(n))}
    known = frozenset(hand | (set(entries) - set(dropped)))
    for name, srcs in raw.items():
        if " " in name:
            words = name.split()
            label = " ".join(words[:-1] + [lx.singularize(words[-1], known)])
            entries.setdefault(label, set()).update(srcs)
    # Rule 5: a dropped descriptive compound leaves its head ("blue jay" -> jay).
    for name in sorted(entries):
        why = dropped.get(name) or drop_reason(name, entries[name])
        if why:
            dropped[name] = why
            if why == "descriptive":
                head = name.split()[-1]
                if head not in entries and not drop_reason(head):
                    entries[head] = {"head"}
    kept = set(entries) - set(dropped)
    # Rule 4: variants of kept names.
    single_nouns = {n for n in kept | lx.HAND_OBJECT_NOUNS if " " not in n}
    vocab_words = {w for n in kept | hand for w in n.split()}
    for name in sorted(kept):
        variants = []
        if "-" in name:
            variants.append(name.replace("-", " "))
        elif " " not in name and name not in hand:
            variants += [f"{name[:i]} {name[i:]}" for i in range(3, len(name) - 3)
                         if name[:i] in vocab_words and name[i:] in single_nouns]
        for v in variants:
            if v not in entries and not drop_reason(v):
                entries[v] = {"variant"}
    kept = {n: entries[n] for n in entries if n not in dropped}
    # A new word must not take another noun's plural: "cookies" -> "cooky", not "cookie".
    known = frozenset(hand | {n for n in kept if " " not in n})
    for word in sorted(known):
        other = lx.singularize(plural(word), known)
        if other != word and other in kept and other not in hand:
            dropped[other] = f"takes the plural of '{word}'"
            del kept[other]
    # The chunker matches a compound by its last word made singular: that must be itself.
    known = frozenset(hand | {n for n in kept if " " not in n})
    for name in list(kept):
        last = name.split()[-1]
        if " " in name and lx.singularize(last, known) != last:
            dropped[name] = f"'{last}' is read as a plural"
            del kept[name]
    return kept, dropped


def plural(word: str) -> str:
    """The regular English plural of one word."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def role_of(noun: str) -> str:
    """Rule 9: the noun's role for the chunker: object, worn or container."""
    last = noun.split()[-1]
    if noun in NO_ROLE:
        return "object"
    if noun in WORN or (" " in noun and (last in nouns.CLOTHING or last in WORN)):
        return "worn"
    if noun in CONTAINERS or (" " in noun and (last in nouns.CONTAINERS or last in CONTAINERS)):
        return "container"
    return "object"


def drop_reason(label: str, sources: set[str] | None = None) -> str | None:
    """Rules 5-7: why ``label`` is dropped, or None when it is kept."""
    words = label.split()
    if len(words) > 1:
        first = words[0]
        if first in DESCRIPTIVE_FIRST_WORDS or lx.normalize_color(first):
            return "descriptive"
        if sources and sources != {"variant"} and words[-1] in nouns.ANIMALS \
                and label not in lx.HAND_KNOWN_NOUNS:
            return "descriptive"  # "pug dog", "harbor seal": a kind of dog, boxed as dog
        if first in NOT_OBJECT_WORDS and first in COUNT_WORDS:
            return "planner word"  # "one dollar bill": "one" is read as a count
    if label in NOT_OBJECT_WORDS:
        return "planner word"
    if label in STOPLIST or label in EXAMPLE_LABELS:
        return "stoplist"
    return None


NOT_OBJECT_WORDS = (frozenset(nouns.SCENE) | nouns.PART_NOUNS | nouns.STYLE_NOUNS
                    | nouns.FRAMED_STYLE_NOUNS | nouns.TIME_NOUNS | frozenset(nouns.NOT_OBJECTS)
                    | frozenset(nouns.COLLECTIVE_NOUNS) | frozenset(BASIC_COLORS)
                    | frozenset(lx.NUMBER_WORDS) | frozenset(lx.QUANTIFIERS) | lx.DETERMINERS
                    | gw.AUXILIARIES | gw.PRONOUNS | gw.CONJUNCTIONS | gw.PREPOSITIONS
                    | gw.VERBS | gw.UNIT_WORDS) - lx.HAND_OBJECT_NOUNS
COUNT_WORDS = frozenset(lx.NUMBER_WORDS) | frozenset(lx.QUANTIFIERS) | lx.DETERMINERS


def render(kept: dict[str, set[str]]) -> str:
    """The csv text: header comment, then one sorted row per noun."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("noun", "role", "ambiguous", "sources"))
    for noun in sorted(kept):
        w.writerow((noun, role_of(noun), int(noun in AMBIGUOUS), ";".join(sorted(kept[noun]))))
    return HEADER + buf.getvalue()


HEADER = """\
# Object nouns from LVIS v1, Objects365 and Open Images V7 category names (CC BY 4.0).
# Generated by benchmarks/planner/build_object_nouns.py; rules and rebuild: data/README.md.
"""


def parse_build_args(doc: str, folder_help: str, argv=None, *, out: Path) -> argparse.Namespace:
    """The command line both csv builders take: the source folder, --out, --check, --dropped."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("folder", type=Path, help=folder_help)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--check", action="store_true", help="only compare with --out")
    ap.add_argument("--dropped", action="store_true", help="list dropped names and why")
    return ap.parse_args(argv)


def write_or_check(args: argparse.Namespace, text: str, dropped: dict[str, str],
                   summary: str) -> int:
    """Print the dropped names if asked, then compare ``text`` with ``args.out`` (--check: exit
    status 1 when it differs) or write it and print ``summary``."""
    if args.dropped:
        for name in sorted(dropped):
            print(f"{dropped[name]}\t{name}")
    if args.check:
        same = args.out.exists() and args.out.read_text("utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    args.out.write_text(text, "utf-8")
    print(f"{args.out}: {summary}")
    return 0


def main(argv=None) -> int:
    args = parse_build_args(__doc__, "ultralytics/cfg/datasets/ of the unzipped wheel", argv,
                            out=OUT)
    kept, dropped = build(args.folder)
    for word in (AMBIGUOUS | WORN | CONTAINERS) - set(kept):
        print(f"note: listed but not in the vocabularies: {word}", file=sys.stderr)
    new = sum(1 for n in kept if n not in lx.HAND_KNOWN_NOUNS)
    return write_or_check(args, render(kept), dropped,
                          f"{len(kept)} nouns ({new} new to the hand lexicon), "
                          f"{len(dropped)} names dropped")


if __name__ == "__main__":
    sys.exit(main())
