"""A contact sheet: rows of thumbnails with a caption under each, as one PNG (pure PIL)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

TILE_PX = 128
CAPTION_PX = 18
LABEL_PX = 20
GAP_PX = 6


@dataclass(frozen=True)
class Tile:
    """One thumbnail (None draws a grey 'no thumbnail' box) and its caption."""

    image: Image.Image | None
    caption: str


@dataclass(frozen=True)
class SheetRow:
    label: str
    tiles: tuple[Tile, ...]


def contact_sheet(rows: Sequence[SheetRow], tile_px: int = TILE_PX) -> bytes:
    """PNG bytes: each row's label, then its tiles left to right, each fitted to `tile_px`."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row; pass the clusters to draw")
    columns = max(1, *(len(r.tiles) for r in rows))
    row_px = LABEL_PX + tile_px + CAPTION_PX + GAP_PX
    width = GAP_PX + columns * (tile_px + GAP_PX)
    sheet = Image.new("RGB", (max(width, 240), len(rows) * row_px + GAP_PX), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=13)
    for r, row in enumerate(rows):
        top = GAP_PX + r * row_px
        draw.text((GAP_PX, top), row.label, fill="black", font=font)
        for c, tile in enumerate(row.tiles):
            left = GAP_PX + c * (tile_px + GAP_PX)
            _paste(sheet, draw, tile, (left, top + LABEL_PX), tile_px)
            caption_at = (left, top + LABEL_PX + tile_px + 2)
            draw.text(caption_at, tile.caption, fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _paste(
    sheet: Image.Image, draw: ImageDraw.ImageDraw, tile: Tile, at: tuple[int, int], px: int
) -> None:
    left, top = at
    if tile.image is None:
        draw.rectangle((left, top, left + px - 1, top + px - 1), fill="#dddddd")
        draw.text((left + 8, top + px // 2 - 6), "no thumbnail", fill="#555555")
        return
    small = tile.image.convert("RGB")
    small.thumbnail((px, px))
    sheet.paste(small, (left + (px - small.width) // 2, top + (px - small.height) // 2))
