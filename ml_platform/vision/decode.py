"""Decode images safely: size and pixel limits, EXIF orientation, EXIF capture time."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_DATETIME = 0x0132
EXIF_IFD = 0x8769
EXIF_ORIENTATION = 0x0112


class ImageDecodeError(ValueError):
    """The bytes are not a usable image; the message says why."""


class ImageTooLargeError(ImageDecodeError):
    """The image exceeds the byte or pixel limit (decompression-bomb guard)."""


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    captured_at: datetime | None
    orientation: int
    format: str | None = None


def check_byte_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {max_bytes}")


def _open(source: bytes | Path, max_pixels: int) -> Image.Image:
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream)
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageDecodeError(f"not a decodable image: {exc}") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooLargeError(f"image rejected as a decompression bomb: {exc}") from exc
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    return img


def read_capture_time(img: Image.Image) -> datetime | None:
    """EXIF DateTimeOriginal (else DateTime), or None when absent or unparsable."""
    exif = img.getexif()
    raw = exif.get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def decode_image(
    source: bytes | Path, *, max_pixels: int, draft_size: tuple[int, int] | None = None
) -> DecodedImage:
    """Fully decode `source` into an RGB image with EXIF orientation applied.

    `draft_size` lets JPEG decode at a reduced scale (at least that size) for speed.
    Raises ImageDecodeError (or ImageTooLargeError) with the reason.
    """
    img = _open(source, max_pixels)
    orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    captured_at = read_capture_time(img)
    image_format = img.format
    if draft_size is not None and img.format == "JPEG":
        img.draft("RGB", draft_size)
    try:
        img.load()
        oriented = ImageOps.exif_transpose(img)
        rgb = oriented.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"image data is corrupt: {exc}") from exc
    return DecodedImage(rgb, captured_at, orientation, image_format)


def load_rgb(
    path: Path, *, max_pixels: int = 200_000_000, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """Load a stored image (already validated at ingestion) as oriented RGB."""
    return decode_image(path, max_pixels=max_pixels, draft_size=draft_size).image
