"""A picture of planned layouts: one tile per prompt, its boxes labelled, the prompt beneath."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Sequence

from PIL import Image, ImageDraw

from t2i_sdk.report.contact_sheet import _BOX_COLORS, _font

if TYPE_CHECKING:
    from t2i_sdk.layout import Layout

_CAPTION_LINES = 4


def _layout_tile(prompt: str, layout: "Layout", tile: int, font) -> Image.Image:
    line_h = font.size + 3 if hasattr(font, "size") else 14
    im = Image.new("RGB", (tile, tile + _CAPTION_LINES * line_h + 6), "white")
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, tile - 1, tile - 1), outline=(200, 200, 200))
    colors = {}
    for obj in layout.objects:
        color = colors.setdefault(obj.label, _BOX_COLORS[len(colors) % len(_BOX_COLORS)])
        x0, y0, x1, y1 = (v * tile for v in obj.box)
        draw.rectangle((x0, y0, x1, y1), outline=color, width=2)
        draw.text((x0 + 3, y0 + 2), obj.label if not obj.color else f"{obj.color} {obj.label}",
                  fill=color, font=font)
    width = max(12, int(tile / (0.55 * (getattr(font, "size", 11) or 11))))
    lines = textwrap.wrap(prompt, width)[:_CAPTION_LINES]
    for i, line in enumerate(lines):
        draw.text((2, tile + 3 + i * line_h), line, fill=(0, 0, 0), font=font)
    return im


def render_layout_sheet(items: Sequence[tuple[str, "Layout"]], *, tile: int = 240,
                        columns: int = 4) -> Image.Image:
    """A grid of ``(prompt, layout)`` tiles, ``columns`` per row."""
    font = _font(11)
    tiles = [_layout_tile(prompt, layout, tile, font) for prompt, layout in items]
    if not tiles:
        return Image.new("RGB", (tile, tile), "white")
    rows = -(-len(tiles) // columns)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (columns * (w + 8) + 8, rows * (h + 8) + 8), (245, 245, 245))
    for i, t in enumerate(tiles):
        sheet.paste(t, (8 + (i % columns) * (w + 8), 8 + (i // columns) * (h + 8)))
    return sheet
