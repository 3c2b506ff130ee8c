"""A picture of a run: drafts with their layout boxes, every refinement round, scores, winner."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from t2i_sdk.result import Candidate, Result

_BOX_COLORS = ["#ff4d4d", "#4da6ff", "#5cd65c", "#ffcc00", "#cc66ff", "#ff9933", "#33cccc"]
_WINNER = "#ffd700"
_PAD, _CAPTION = 8, 30


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _tile(cand: "Candidate", result: "Result", thumb: int, font) -> Image.Image:
    tile = Image.new("RGB", (thumb, thumb + _CAPTION), "white")
    tile.paste(cand.image.convert("RGB").resize((thumb, thumb), Image.NEAREST), (0, 0))
    draw = ImageDraw.Draw(tile)
    if cand.round == 0:  # boxes belong to drafts; refinements keep the same geometry
        for i, obj in enumerate(result.layout_of(cand).objects):
            color = _BOX_COLORS[i % len(_BOX_COLORS)]
            x0, y0, x1, y1 = (v * thumb for v in obj.box)
            draw.rectangle((x0, y0, x1, y1), outline=color, width=2)
            draw.text((x0 + 3, y0 + 2), obj.label, fill=color, font=font)
    if cand.index == result.winner:
        draw.rectangle((0, 0, thumb - 1, thumb - 1), outline=_WINNER, width=5)
    s = cand.score
    origin = f"#{cand.index} seed {cand.seed}" + (f" from #{cand.parent}" if cand.parent is not None else "")
    line2 = f"S={s.total:+.3f} scene={s.scene:+.3f}" if s else "unscored"
    if s and s.objects:
        line2 += f" obj={sum(s.objects) / len(s.objects):+.3f}"
    draw.text((3, thumb + 2), origin + (" WINNER" if cand.index == result.winner else ""),
              fill="black", font=font)
    draw.text((3, thumb + 15), line2, fill="black", font=font)
    return tile


def render_contact_sheet(result: "Result", *, thumb: int = 192, columns: int = 6) -> Image.Image:
    """One row per stage (drafts, refinement round 1, 2, …); ``thumb`` px per image."""
    font, title_font = _font(11), _font(14)
    rows: dict[int, list] = {}
    for cand in result.candidates:
        rows.setdefault(cand.round, []).append(cand)
    header = [f"prompt: {result.prompt}"] + [f"rewrite #{i}: {r}" for i, r in enumerate(result.rewrites)
                                              if r != result.prompt]
    header.append(f"plan: {result.plan.to_dict()}   total {result.timings.get('total', 0):.0f} ms"
                  + (f" of {result.budget_ms:.0f} ms budget" if result.budget_ms else ""))
    lines = [w for h in header for w in textwrap.wrap(h, 110)]
    width = _PAD + columns * (thumb + _PAD) + 90
    row_h = thumb + _CAPTION + _PAD
    n_rows = sum((len(c) + columns - 1) // columns for c in rows.values())
    sheet = Image.new("RGB", (width, _PAD + 18 * len(lines) + _PAD + n_rows * row_h), "#f0f0f0")
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(lines):
        draw.text((_PAD, _PAD + 18 * i), line, fill="black", font=title_font)
    y = 2 * _PAD + 18 * len(lines)
    for round_, cands in sorted(rows.items()):
        for start in range(0, len(cands), columns):
            label = "drafts" if round_ == 0 else f"round {round_}"
            draw.text((_PAD, y + thumb // 2), label if start == 0 else "", fill="black", font=title_font)
            for j, cand in enumerate(cands[start:start + columns]):
                sheet.paste(_tile(cand, result, thumb, font), (90 + j * (thumb + _PAD), y))
            y += row_h
    return sheet
