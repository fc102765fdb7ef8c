"""Contact sheets: rows of captioned thumbnails under a title, stacked. The quality benchmark's sheet (every
seed's result beside the baselines) and the screens' sheet (every design on every pair) are made of them."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

from sincut.evaluation.charts import chart_font

CAPTION = 18  # px under a thumbnail for its caption
TITLE = 20  # px above a row for its title
GAP = 4  # px between thumbnails


def captioned(image: Image.Image, caption: str, height: int) -> Image.Image:
    """`image` scaled to `height` px (aspect kept) with `caption` centred under it."""
    image = image.convert("RGB")
    image = image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)
    tile = Image.new("RGB", (image.width, height + CAPTION), "white")
    tile.paste(image, (0, 0))
    ImageDraw.Draw(tile).text((image.width // 2, height + 2), caption, fill="black", font=chart_font(13),
                              anchor="mt")
    return tile


def sheet_row(title: str, cells: Sequence[tuple[str, Image.Image]], height: int, min_width: int = 700) -> Image.Image:
    """One row: `title` on top, then each (caption, image) as a captioned thumbnail `height` px high."""
    tiles = [captioned(image, caption, height) for caption, image in cells]
    width = sum(t.width for t in tiles) + GAP * max(0, len(tiles) - 1)
    row = Image.new("RGB", (max(width, min_width), TITLE + height + CAPTION + 2), "white")
    ImageDraw.Draw(row).text((2, 2), title, fill="black", font=chart_font(15))
    x = 0
    for tile in tiles:
        row.paste(tile, (x, TITLE))
        x += tile.width + GAP
    return row


def stacked(rows: Sequence[Image.Image]) -> Image.Image:
    """The rows one under the other, left-aligned on white."""
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    return sheet
