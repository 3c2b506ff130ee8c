"""The layout sheet draws each planned box where the layout puts it."""
from __future__ import annotations

import numpy as np

from t2i_sdk.layout import Layout, LayoutObject
from t2i_sdk.report.layout_sheet import render_layout_sheet


def test_boxes_are_drawn_at_their_coordinates_and_tiles_fill_the_grid():
    layout = Layout((LayoutObject("a red apple", "apple", "red", (0.25, 0.25, 0.75, 0.75)),), None, "rule", ())
    sheet = render_layout_sheet([("a red apple", layout)] * 3, tile=100, columns=2)
    pixels = np.asarray(sheet)
    tile_w = (sheet.width - 8) // 2 - 8
    assert tile_w == 100 and sheet.height > 2 * 100  # 3 tiles: 2 rows of 2 columns
    # the box's left edge (x = 8 + 25) is drawn, the tile's centre (inside the box) is not
    assert (pixels[8 + 50, 8 + 25] != 255).any()
    assert (pixels[8 + 50, 8 + 50] == 255).all()
    empty = render_layout_sheet([])
    assert empty.size == (240, 240)
