"""A picture of what the rewriter changed: one row per prompt, the image from the words as
typed beside the image from the LLM's rewrite, each with its layout boxes and a verdict."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from t2i_sdk.report.contact_sheet import _BOX_COLORS, _font

if TYPE_CHECKING:
    from t2i_sdk.result import Result

_PAD, _TEXT_W = 10, 330
_OK, _WRONG = "#1a9e3a", "#c62828"


@dataclass(frozen=True)
class Comparison:
    """One prompt: the run without and with the rewriter; ``correct_*`` None when unjudged."""

    prompt: str
    before: "Result"
    after: "Result"
    correct_before: bool | None = None
    correct_after: bool | None = None


def _panel(result: "Result", thumb: int, font) -> Image.Image:
    panel = result.image.convert("RGB").resize((thumb, thumb), Image.NEAREST)
    draw = ImageDraw.Draw(panel)
    for i, obj in enumerate(result.layout.objects):
        color = _BOX_COLORS[i % len(_BOX_COLORS)]
        x0, y0, x1, y1 = (v * thumb for v in obj.box)
        draw.rectangle((x0, y0, x1, y1), outline=color, width=2)
        draw.text((x0 + 3, y0 + 2), obj.label, fill=color, font=font)
    return panel


def _verdict(correct: bool | None) -> tuple[str, str]:
    if correct is None:
        return "", "black"
    return ("correct", _OK) if correct else ("wrong", _WRONG)


def render_before_after(rows: list[Comparison], *, thumb: int = 160) -> Image.Image:
    """Columns: what the user typed | image as typed | rewrite | image from the rewrite."""
    font, big = _font(12), _font(15)
    row_h = thumb + 2 * _PAD
    width = 2 * (_TEXT_W + thumb) + 5 * _PAD
    sheet = Image.new("RGB", (width, 34 + len(rows) * row_h), "#f4f4f4")
    draw = ImageDraw.Draw(sheet)
    heads = ("typed by the user", "image as typed", "LLM rewrite", "image from the rewrite")
    xs = (_PAD, 2 * _PAD + _TEXT_W, 3 * _PAD + _TEXT_W + thumb, 4 * _PAD + 2 * _TEXT_W + thumb)
    for x, head in zip(xs, heads):
        draw.text((x, 8), head, fill="black", font=big)
    for r, row in enumerate(rows):
        y = 34 + r * row_h
        rewrite = next((t for t in row.after.rewrites if t != row.prompt), row.prompt)
        for x, text, result, correct in ((xs[0], row.prompt, row.before, row.correct_before),
                                         (xs[2], rewrite, row.after, row.correct_after)):
            for i, line in enumerate(textwrap.wrap(text, 44)[:7]):
                draw.text((x, y + 18 * i), line, fill="black", font=big)
            label, color = _verdict(correct)
            draw.text((x, y + thumb - 18), label, fill=color, font=big)
            sheet.paste(_panel(result, thumb, font), (x + _TEXT_W + _PAD, y))
    return sheet
