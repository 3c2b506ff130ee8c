"""Words the planners know: counts, colors, object and scene nouns (``nouns.py`` and the
detection vocabularies of ``object_vocabulary``), plurals.

Pure data plus two small functions: ``singularize`` (one word) and ``mentions`` (does a
prompt name a label, in any number). No regex per call beyond the precompiled tokenizer.
"""
from __future__ import annotations

import re

from t2i_engines.vocabulary import COCO_OBJECTS  # GenEval's 80 nouns
from t2i_sdk.layout import BASIC_COLORS
from t2i_sdk.planning import nouns
from t2i_sdk.planning.object_vocabulary import EXTERNAL_NOUNS, VOCABULARY

COLORS = frozenset(BASIC_COLORS)
COLOR_ALIASES = {"grey": "gray"}

NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "another": 1, "single": 1, "two": 2, "both": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "twenty": 20,
}
# Say which object, not how many: the noun's number decides ("the cat" 1, "the cats" 2).
DETERMINERS = frozenset(("the", "this", "that", "these", "those", "my", "his", "her", "its",
                         "their", "our", "your"))
QUANTIFIERS = {"some": 2, "several": 3, "many": 4, "multiple": 3, "few": 3, "couple": 2,
               "pair": 2, "group": 3, "bunch": 3, "dozen": 12}
# The most boxes one group gets: "a dozen eggs" and "twelve eggs" still fit a 4 x 3 grid.
MAX_COUNT = 12

# Nouns the planner may box (COCO's 80 plus concrete things people draw) and scene nouns.
HAND_OBJECT_NOUNS = (frozenset(COCO_OBJECTS) | frozenset(
    w for group in (nouns.PEOPLE, nouns.ANIMALS, nouns.FOOD, nouns.FURNITURE, nouns.KITCHEN,
                    nouns.VEHICLES, nouns.THINGS, nouns.PLANTS_AND_BUILDINGS, nouns.COMPOUNDS)
    for w in group) | nouns.CONTAINERS | nouns.CLOTHING) - frozenset(nouns.NOT_OBJECTS)
# ... plus the category names of LVIS, Objects365 and Open Images (``object_vocabulary``).
OBJECT_NOUNS = HAND_OBJECT_NOUNS | EXTERNAL_NOUNS
SCENE_NOUNS = frozenset(nouns.SCENE) - OBJECT_NOUNS
# "in a poncho" describes its wearer; "in a hamper" is inside it.
CLOTHING = nouns.CLOTHING | VOCABULARY["worn"]
CONTAINERS = nouns.CONTAINERS | VOCABULARY["container"]
# Head words that make a compound a container: "a guitar case", "a toy box", "a tool bag".
CONTAINER_HEADS = frozenset(w for w in CONTAINERS if " " not in w) | {"case"}


def is_container(label: str) -> bool:
    """Can things be "in" it: a listed container or a compound on a container head word."""
    return label in CONTAINERS or label.rsplit(" ", 1)[-1] in CONTAINER_HEADS
# Verbs too: a noun only right after a count word, determiner, colour or another noun.
VERB_NOUNS = frozenset((
    "watch", "ring", "fly", "present", "iron", "fan", "bow", "seal", "bat", "star", "tie",
    "plant", "cook", "pet", "nurse", "sign", "frame", "brush", "comb", "hammer", "kid",
    "guy", "block", "saw", "staff", "chain", "drum", "top", "flag", "rock", "light", "stick",
    "rose", "fall", "spring", "set", "row", "line", "ship", "pitcher", "jet", "shield", "can",
    "well",
))
# ... plus the generated tables' rarer or mass nouns, boxed the same way.
AMBIGUOUS_NOUNS = VERB_NOUNS | VOCABULARY["ambiguous"]

IRREGULAR_PLURALS = {
    "mice": "mouse", "people": "person", "persons": "person", "men": "man", "women": "woman",
    "children": "child", "teeth": "tooth", "feet": "foot", "geese": "goose", "oxen": "ox",
    "lice": "louse", "dice": "die", "cacti": "cactus", "fungi": "fungus", "octopi": "octopus",
    "buses": "bus", "busses": "bus", "boxes": "box", "glasses": "glass", "benches": "bench",
    "cherries": "cherry", "potatoes": "potato", "tomatoes": "tomato", "heroes": "hero",
    "mangoes": "mango", "volcanoes": "volcano", "echoes": "echo", "dominoes": "domino",
    "mosquitoes": "mosquito", "torpedoes": "torpedo", "buffaloes": "buffalo",
    "knives": "knife", "wives": "wife", "lives": "life", "leaves": "leaf", "wolves": "wolf",
    "calves": "calf", "halves": "half", "shelves": "shelf", "loaves": "loaf",
    "thieves": "thief", "scarves": "scarf", "elves": "elf", "hooves": "hoof",
    "dwarves": "dwarf", "wharves": "wharf", "sheaves": "sheaf", "selves": "self",
    "lenses": "lens", "gases": "gas", "canvases": "canvas", "walruses": "walrus",
    "cactuses": "cactus", "octopuses": "octopus", "irises": "iris",
}
# Same word in both numbers (COCO's "skis" and "scissors" are its singular labels), and
# singulars that end in -s ("lens", not a plural of "len").
INVARIANT_NOUNS = frozenset((
    "sheep", "fish", "deer", "moose", "bison", "salmon", "trout", "shrimp", "squid",
    "aircraft", "series", "species", "scissors", "skis", "pants", "jeans", "shorts",
    "broccoli", "news", "lens",
))
_IE_WORDS = frozenset((
    "tie", "pie", "cookie", "movie", "zombie", "brownie", "hoodie", "selfie", "smoothie",
    "rookie", "calorie", "beanie", "genie", "goalie", "prairie", "pixie", "birdie", "collie",
    "veggie", "magpie", "necktie", "bowtie", "lie",
))

HAND_KNOWN_NOUNS = (HAND_OBJECT_NOUNS | SCENE_NOUNS | _IE_WORDS | nouns.STYLE_NOUNS
                    | frozenset(nouns.NOT_OBJECTS))
KNOWN_NOUNS = HAND_KNOWN_NOUNS | OBJECT_NOUNS
MULTIWORD_NOUNS = frozenset(n for n in KNOWN_NOUNS if " " in n)
MAX_NOUN_WORDS = max(len(n.split()) for n in MULTIWORD_NOUNS)

TOKEN_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[,;.&]")


def singularize(word: str, known: frozenset[str] | None = None) -> str:
    """Singular of one lower-case word: irregulars, invariants, then -ies/-ves/-es/-s rules.
    ``known``: the nouns to prefer (default ``KNOWN_NOUNS``)."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    known = KNOWN_NOUNS if known is None else known
    if word in INVARIANT_NOUNS or word in known or len(word) <= 2:
        return word
    # Prefer a candidate the lexicon knows: "horses" -> "horse", not "hors".
    for cand in _candidates(word):
        if cand in known:
            return cand
    return _rule_singular(word)


def _candidates(word: str) -> list[str]:
    cands = []
    if word.endswith("ies"):
        cands += [word[:-3] + "y", word[:-1]]
    if word.endswith("ves"):
        cands += [word[:-3] + "f", word[:-3] + "fe"]
    if word.endswith("men"):
        cands.append(word[:-3] + "man")  # "fishermen", "policewomen"
    if word.endswith("s"):
        cands.append(word[:-1])
    # English adds "-es" only after a hiss or an "o": "canes" -> "cane", never "can".
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh", "o")):
        cands.append(word[:-2])
    return cands


def _rule_singular(word: str) -> str:
    if word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and word[:-1] not in _IE_WORDS:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zzes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def is_plural(word: str) -> bool:
    """True when ``word`` is a plural form (invariant nouns such as "sheep" count as singular)."""
    return singularize(word) != word


def normalize_color(word: str) -> str | None:
    """One of BASIC_COLORS, or None: "grey" -> "gray", "light-blue" -> "blue"."""
    word = COLOR_ALIASES.get(word, word)
    if word in COLORS:
        return word
    tail = word.rsplit("-", 1)[-1]
    tail = COLOR_ALIASES.get(tail, tail)
    return tail if tail in COLORS else None


def singular_label(label: str) -> str:
    """Lower-cased label with its last word singular: "Wine Glasses" -> "wine glass"."""
    words = TOKEN_RE.findall(label.lower())
    words = [w for w in words if w not in ",;.&"]
    if not words:
        return ""
    return " ".join(words[:-1] + [singularize(words[-1])])


def mention_words(prompt: str) -> tuple[str, ...]:
    """``prompt``'s words as ``mentions`` compares them (singular, "grey" as "gray"): compute
    once to test many labels against one long prompt."""
    return tuple(singularize(COLOR_ALIASES.get(w, w)) for w in TOKEN_RE.findall(prompt.lower()))


def mention_count(prompt: str | tuple[str, ...], label: str) -> int:
    """How often ``prompt`` (text, or its ``mention_words``) names ``label``, in any number."""
    target = tuple(singular_label(label).split())
    if not target:
        return 0
    words = mention_words(prompt) if isinstance(prompt, str) else prompt
    n = len(target)
    return sum(words[i:i + n] == target for i in range(len(words) - n + 1))


def mentions(prompt: str | tuple[str, ...], label: str) -> bool:
    """Does ``prompt`` (text, or its ``mention_words``) name ``label`` in any number?"""
    return mention_count(prompt, label) > 0
