"""Decode untrusted images safely: byte, pixel, side and aspect limits, EXIF orientation.

The guards run on the header, before any pixel is decoded: the caller's pixel limit is
checked on the size the header declares (PIL's own decompression-bomb limit is process-wide,
shared by every thread, so it cannot hold a per-call limit and is switched off here once),
and images whose longest side or aspect ratio would make later resizing allocate far more
than the model input are refused. JPEGs decode at a reduced scale (`Image.draft`) when a
smaller size is asked for; other formats are reduced right after decoding. Any failure
inside PIL (its plugins raise many exception types on hostile bytes) becomes an
`ImageDecodeError` with the reason.
Phones upload HEIC/HEIF (pillow-heif's opener, registered on first use) and AVIF (Pillow's
own plugin); both go through the same guards.
"""

from __future__ import annotations

import functools
import io
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_DATETIME = 0x0132
EXIF_IFD = 0x8769
EXIF_ORIENTATION = 0x0112
DEFAULT_MAX_SIDE = 20_000  # pixels on the longest side
DEFAULT_MAX_ASPECT = 30.0  # longest side / shortest side
STORED_MAX_PIXELS = 200_000_000  # stored images passed the ingestion limit already

# EXIF orientation -> the transpose that makes the image upright (ImageOps.exif_transpose's).
_TRANSPOSE: dict[int, list[Image.Transpose]] = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}

# `check_dimensions` enforces each caller's pixel limit on the header with a message naming
# the size. PIL's limit is one process-wide value (setting it per call raced between threads
# and leaked into later callers), so it is switched off once, here, and its warning with it.
Image.MAX_IMAGE_PIXELS = None
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageDecodeError(ValueError):
    """The bytes are not a usable image; the message says why."""


class ImageTooLargeError(ImageDecodeError):
    """The image exceeds the byte, pixel, side or aspect limit (decompression-bomb guard)."""


@dataclass(frozen=True)
class DecodeLimits:
    """What an image may be before it is decoded."""

    max_pixels: int
    max_side: int = DEFAULT_MAX_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    captured_at: datetime | None
    orientation: int
    format: str | None = None
    original_size: tuple[int, int] | None = None  # (width, height) before any reduction


def check_byte_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {max_bytes}")


def check_dimensions(width: int, height: int, limits: DecodeLimits) -> None:
    """Refuse sizes over the pixel, side or aspect limit, naming the size and the limit."""
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image is {width}x{height}: it has no pixels")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}"
        )
    if max(width, height) > limits.max_side:
        raise ImageTooLargeError(
            f"image is {width}x{height}; the longest side may be at most {limits.max_side} pixels"
        )
    aspect = max(width, height) / min(width, height)
    if aspect > limits.max_aspect:
        raise ImageTooLargeError(
            f"image is {width}x{height}, an aspect ratio of {aspect:.0f}:1; "
            f"the limit is {limits.max_aspect:g}:1"
        )


@functools.cache
def register_heif() -> None:
    """Teach PIL HEIC/HEIF (pillow-heif); once per process."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _open(source: bytes | Path, limits: DecodeLimits) -> Image.Image:
    register_heif()
    try:
        img = Image.open(io.BytesIO(source if isinstance(source, bytes) else source.read_bytes()))
        width, height = img.size
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            "not a decodable image: the bytes are in no format PIL reads "
            "(JPEG, PNG, GIF, WebP, HEIC, AVIF, TIFF, BMP, ...)"
        ) from exc
    except Exception as exc:  # PIL plugins raise many types on hostile headers
        raise ImageDecodeError(f"not a decodable image: {_describe(exc)}") from exc
    check_dimensions(width, height, limits)
    return img


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text[:300]}"


def read_orientation(img: Image.Image) -> int:
    """EXIF Orientation 1..8; 1 when absent, malformed (text, bytes, out of range) or unreadable."""
    try:
        raw = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a corrupt EXIF block only loses the orientation
        log.debug("unreadable EXIF block; orientation taken as 1", exc_info=True)
        return 1
    if isinstance(raw, tuple) and raw:
        raw = raw[0]
    return raw if isinstance(raw, int) and 1 <= raw <= 8 else 1


def read_capture_time(img: Image.Image) -> datetime | None:
    """EXIF DateTimeOriginal (else DateTime), or None when absent or unparsable."""
    try:
        exif = img.getexif()
        raw = exif.get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME)
    except Exception:  # a corrupt EXIF block only loses the capture time
        return None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def decode_image(
    source: bytes | Path,
    *,
    max_pixels: int,
    draft_size: tuple[int, int] | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    reduce_to: int | None = None,
) -> DecodedImage:
    """Fully decode `source` into an RGB image with EXIF orientation applied.

    `draft_size` lets JPEG decode at a reduced scale (at least that size) for speed;
    `reduce_to` bounds the longest side of the result (JPEG through the draft, other
    formats right after decoding). Raises ImageDecodeError (or ImageTooLargeError).
    """
    img = _open(source, DecodeLimits(max_pixels, max_side, max_aspect))
    original = img.size
    orientation = read_orientation(img)
    captured_at = read_capture_time(img)
    image_format = img.format
    try:
        rgb = _pixels(img, draft_size, reduce_to)
        for method in _TRANSPOSE.get(orientation, []):
            rgb = rgb.transpose(method)
    except Exception as exc:  # truncated data, bad chunks, unsupported modes, ...
        raise ImageDecodeError(f"image data is corrupt: {_describe(exc)}") from exc
    return DecodedImage(rgb, captured_at, orientation, image_format, original)


def _pixels(
    img: Image.Image, draft_size: tuple[int, int] | None, reduce_to: int | None
) -> Image.Image:
    """The decoded RGB pixels, drafted and reduced as asked."""
    target = draft_size
    if reduce_to is not None:
        target = (reduce_to, reduce_to) if target is None else target
    if target is not None and img.format == "JPEG":
        img.draft("RGB", target)
    img.load()
    if reduce_to is not None and max(img.size) > reduce_to:
        factor = -(-max(img.size) // reduce_to)  # ceil: the result fits in reduce_to
        img = img.reduce(factor) if img.mode in _REDUCIBLE else img
    rgb = img if img.mode == "RGB" else _to_rgb(img)
    if reduce_to is not None and max(rgb.size) > reduce_to:
        rgb.thumbnail((reduce_to, reduce_to), Image.Resampling.BILINEAR)
    return rgb


_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F", "I;16"})


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        img = img.convert("I")
    if img.mode == "I":  # 16-bit grey: scale to 8 bit instead of clipping
        img = img.point(lambda v: v / 257.0).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def load_rgb(
    path: Path,
    *,
    max_pixels: int = STORED_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Load a stored image (already validated at ingestion) as oriented RGB."""
    return decode_image(path, max_pixels=max_pixels, draft_size=draft_size).image
