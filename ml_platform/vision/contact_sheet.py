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
BANNER_PX = 24


@dataclass(frozen=True)
class Tile:
    """One thumbnail (None draws a grey 'no thumbnail' box) and its caption."""

    image: Image.Image | None
    caption: str


@dataclass(frozen=True)
class SheetRow:
    label: str
    tiles: tuple[Tile, ...]


def contact_sheet(
    rows: Sequence[SheetRow], tile_px: int = TILE_PX, banner: str | None = None
) -> bytes:
    """PNG bytes: each row's label, then its tiles left to right, each fitted to `tile_px`.
    `banner` (e.g. that the pictures were chosen by random-weight embeddings) is written
    across the top, white on red."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row; pass the clusters to draw")
    columns = max(1, *(len(r.tiles) for r in rows))
    row_px = LABEL_PX + tile_px + CAPTION_PX + GAP_PX
    width = GAP_PX + columns * (tile_px + GAP_PX)
    draw_font, banner_font = ImageFont.load_default(size=13), _banner_font()
    banner_px = BANNER_PX if banner else 0
    if banner:
        width = max(width, int(banner_font.getlength(banner)) + 4 * GAP_PX)
    height = banner_px + len(rows) * row_px + GAP_PX
    sheet = Image.new("RGB", (max(width, 240), height), "white")
    draw, font = ImageDraw.Draw(sheet), draw_font
    if banner:
        draw.rectangle((0, 0, sheet.width - 1, banner_px - 1), fill="#c62828")
        draw.text((2 * GAP_PX, (banner_px - 14) // 2), banner, fill="white", font=banner_font)
    for r, row in enumerate(rows):
        top = banner_px + GAP_PX + r * row_px
        draw.text((GAP_PX, top), row.label, fill="black", font=font)
        for c, tile in enumerate(row.tiles):
            left = GAP_PX + c * (tile_px + GAP_PX)
            _paste(sheet, draw, tile, (left, top + LABEL_PX), tile_px)
            caption_at = (left, top + LABEL_PX + tile_px + 2)
            draw.text(caption_at, tile.caption, fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _banner_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold (shipped with matplotlib: it has the dash PIL's default font lacks)."""
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold"))
    try:
        return ImageFont.truetype(path, 14)
    except OSError:
        return ImageFont.load_default(size=14)


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
