"""Typical size, photo aspect and resting height per object label, for sizing planned boxes.

Without priors every lone object got the same box (a fork as big as a refrigerator). The table
(``data/object_sizes.csv``) covers COCO's 80 classes plus about 250 common nouns (people words,
animals, food, household objects, furniture, vehicles, tools, plants, buildings, sky objects).

Where the figures come from, per row's ``source`` column:
  - ``wiki``: typical adult dimensions of people and animals (height at the shoulder or
    standing, body length) as encyclopedia infoboxes give them;
  - ``spec``: manufacturer or regulation sizes (cars, buses, furniture, appliances, balls,
    rackets, cutlery);
  - ``common``: everyday estimates (food, household objects, plants, buildings);
  - ``apparent``: how large sun, moon, clouds and rainbows look in a photo, not their size.
The metres were written from memory of such sources and rounded, not looked up one by one;
they enter the layout through ``size ** SIZE_EXPONENT`` and a log scale, so a factor of 1.5 off
barely moves a box. The aspect column (box width / height when the object is a photo's
subject) and the placement column are judged, not measured.

Lookup: exact label, else the label made singular, else its trailing words ("red sports car"
-> "sports car" -> "car"); an unknown label gets ``NEUTRAL_PRIOR`` (aspect 1, medium size).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from t2i_sdk.planning.lexicon import singular_label

PLACEMENTS = ("ground", "free", "sky")  # rests on the ground / anywhere / high in the frame
TABLE_FILE = "object_sizes.csv"
NEUTRAL_SIZE_M = 0.5  # an unknown object is medium: between a cat and a chair


@dataclass(frozen=True)
class SizePrior:
    """``size_m``: the object's larger real extent; ``aspect``: its box width / height."""

    size_m: float
    aspect: float
    placement: str  # one of PLACEMENTS
    label: str | None = None  # the table row it came from; None for the neutral prior


NEUTRAL_PRIOR = SizePrior(NEUTRAL_SIZE_M, 1.0, "free")


def _parse_row(row: dict[str, str], line: int) -> SizePrior:
    try:
        height, width, aspect = float(row["height_m"]), float(row["width_m"]), float(row["aspect"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{TABLE_FILE} row {line}: bad number ({exc})") from None
    if min(height, width, aspect) <= 0 or row["placement"] not in PLACEMENTS:
        raise ValueError(f"{TABLE_FILE} row {line}: sizes and aspect must be > 0 and "
                         f"placement one of {PLACEMENTS}")
    return SizePrior(max(height, width), aspect, row["placement"], row["label"])


@lru_cache(maxsize=1)
def size_table() -> dict[str, SizePrior]:
    """Label -> prior, read once from the package's CSV."""
    text = resources.files("t2i_sdk.planning").joinpath("data", TABLE_FILE).read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    table = {}
    for i, row in enumerate(csv.DictReader(lines), start=2):
        if row["label"] in table:
            raise ValueError(f"{TABLE_FILE} row {i}: duplicate label {row['label']!r}")
        table[row["label"]] = _parse_row(row, i)
    return table


@lru_cache(maxsize=4096)
def size_prior(label: str) -> SizePrior:
    """The prior for ``label`` (any case and number): exact, singular, then its last words."""
    table = size_table()
    if label in table:
        return table[label]
    words = singular_label(label).split()
    for start in range(len(words)):
        prior = table.get(" ".join(words[start:]))
        if prior is not None:
            return prior
    return NEUTRAL_PRIOR
