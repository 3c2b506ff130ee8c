"""Object nouns from public vocabularies, read once.

``data/object_nouns.csv`` (built by ``benchmarks/planner/build_object_nouns.py``) lists about
2000 singular nouns and fixed compound names from detection vocabularies (LVIS, Objects365,
Open Images); ``data/wordnet_nouns.csv`` (``build_wordnet_nouns.py``) about 16000 single words
whose senses WordNet 3.0 files mostly under people, animals, artifacts, foods and plants, all
``ambiguous``. Sources, licences and rules: ``data/README.md``. Each row has a role,
``object``, ``worn`` (a garment) or ``container`` (a thing to be in), and an ``ambiguous`` flag
(a verb, mass noun or rarer word too: boxed only after a count word, determiner or modifier).
``lexicon`` unions them with the hand lexicon. Standard library only; importing reads about
400 kB.
"""
from __future__ import annotations

from pathlib import Path

TABLE_FILE = "object_nouns.csv"
TABLE_FILES = (TABLE_FILE, "wordnet_nouns.csv")
ROLES = ("object", "worn", "container")


def _table_text(name: str = TABLE_FILE) -> str:
    # The file beside this module (fast); importlib.resources only for a zipped install.
    path = Path(__file__).with_name("data") / name
    if path.is_file():
        return path.read_text("utf-8")
    from importlib import resources
    return resources.files("t2i_sdk.planning").joinpath("data", name).read_text("utf-8")


def read_vocabulary(text: str | None = None) -> dict[str, frozenset[str]]:
    """{"object"|"worn"|"container": nouns of that role, "ambiguous": nouns flagged so} from the
    package's csv (or ``text`` in its format): a ``noun,role,ambiguous,sources`` header, then
    one row per noun; ``#`` lines are comments. No field is quoted."""
    text = _table_text() if text is None else text
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0].split(",") != ["noun", "role", "ambiguous", "sources"]:
        raise ValueError(f"{TABLE_FILE}: the header must be noun,role,ambiguous,sources")
    sets: dict[str, set[str]] = {k: set() for k in ROLES + ("ambiguous",)}
    for i, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        noun, role, flag = fields[:3] if len(fields) == 4 else ("", "", "")
        if role not in ROLES or flag not in ("0", "1") or not noun \
                or noun != noun.strip().lower() or '"' in line:
            raise ValueError(f"{TABLE_FILE} row {i}: bad row {line!r}")
        sets[role].add(noun)
        if flag == "1":
            sets["ambiguous"].add(noun)
    return {k: frozenset(v) for k, v in sets.items()}


def read_vocabularies(names=TABLE_FILES) -> dict[str, frozenset[str]]:
    """``read_vocabulary`` of each packaged table, unioned."""
    tables = [read_vocabulary(_table_text(name)) for name in names]
    return {k: frozenset().union(*(t[k] for t in tables)) for k in tables[0]}


VOCABULARY = read_vocabularies()
EXTERNAL_NOUNS = VOCABULARY["object"] | VOCABULARY["worn"] | VOCABULARY["container"]
