"""A corpus of hostile and odd image files, made in memory by the tests (nothing checked in).

Each `Case` says whether a careful decoder must accept it (`decodes=True`: odd but valid
images: CMYK, 16-bit, palette, animated, odd EXIF), refuse it with a 4xx (`False`:
truncated, bombs, extreme aspect ratios) or may do either (`None`: bytes flipped inside the
pixel data, which some formats cannot detect). The server must never answer either with a 5xx.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    decodes: bool | None  # None: refusing and decoding are both right (bit flips in pixels)


def _noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "CMYK": 4}[mode]
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    pixels = rng.integers(0, 255, shape, dtype=np.uint8)
    return Image.fromarray(pixels, mode) if mode == "CMYK" else Image.fromarray(pixels)


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_raw(width: int, height: int, rows: bytes, *, depth: int = 8, color: int = 0) -> bytes:
    """A PNG written by hand: any IHDR size, any (possibly wrong) compressed row data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def _exif_ascii_orientation(text: bytes) -> bytes:
    """An EXIF block whose Orientation (0x0112) is stored as ASCII text, not a SHORT."""
    value = text.ljust(4, b"\x00")[:4]
    entry = struct.pack(">HHI", 0x0112, 2, 4) + value
    return b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + b"\x00\x01" + entry + b"\0" * 4


def _exif_corrupt() -> bytes:
    """An EXIF block that claims 60000 entries and offsets past its end."""
    return (
        b"Exif\x00\x00MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 60000) + b"\xff" * 40
    )


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose SOF header claims `width`x`height`."""
    data = bytearray(save(_noise((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _flip_bytes(data: bytes, start: int, count: int = 64, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for index in rng.integers(start, len(out), count):
        out[index] ^= 0xFF
    return bytes(out)


def _jpeg_with(exif: bytes) -> bytes:
    return save(_noise((40, 30)), "JPEG", exif=exif)


def _animated(fmt: str) -> bytes:
    frames = [_noise((40, 30), seed=i) for i in range(4)]
    return save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _sixteen_bit_png() -> bytes:
    gradient = np.linspace(0, 65535, 48 * 32, dtype=np.uint16).reshape(32, 48)
    return save(Image.fromarray(gradient), "PNG")


def _palette(transparent: bool) -> bytes:
    image = _noise((48, 32)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return save(image, "PNG", transparency=0) if transparent else save(image, "PNG")


def _text_bomb_png() -> bytes:
    """A valid 8x8 PNG with a zTXt chunk that inflates to 50 MB."""
    base = save(_noise((8, 8)), "PNG")
    text = b"Comment\x00\x00" + zlib.compress(b"A" * 50_000_000, 9)
    end = base.rindex(b"IEND") - 4
    return base[:end] + _chunk(b"zTXt", text) + base[end:]


def _float_tiff() -> bytes:
    values = np.linspace(0.0, 1.0, 40 * 30, dtype=np.float32).reshape(30, 40)
    return save(Image.fromarray(values), "TIFF")


def corpus(zlib_bomb_side: int = 7000) -> list[Case]:
    """At least 40 cases; `zlib_bomb_side`^2 stays under the default 50 MP pixel limit."""
    jpeg = save(_noise((200, 150)), "JPEG", quality=90)
    png = save(_noise((200, 150)), "PNG")
    gif = save(_noise((200, 150)).convert("P"), "GIF")
    webp = save(_noise((200, 150)), "WEBP")
    tiff = save(_noise((200, 150)), "TIFF")
    good: list[tuple[str, Callable[[], bytes]]] = [
        ("cmyk-jpeg", lambda: save(_noise((64, 48), "CMYK"), "JPEG")),
        ("16-bit-png", _sixteen_bit_png),
        ("palette-png", lambda: _palette(False)),
        ("palette-transparent-png", lambda: _palette(True)),
        ("grey-alpha-png", lambda: save(_noise((40, 30), "L").convert("LA"), "PNG")),
        ("1-bit-png", lambda: save(_noise((40, 30), "L").convert("1"), "PNG")),
        ("rgba-webp", lambda: save(_noise((40, 30), "RGBA"), "WEBP")),
        ("float-tiff", _float_tiff),
        ("animated-gif", lambda: _animated("GIF")),
        ("animated-webp", lambda: _animated("WEBP")),
        ("animated-png", lambda: _animated("PNG")),
        ("one-pixel", lambda: save(_noise((1, 1)), "PNG")),
        ("bmp", lambda: save(_noise((40, 30)), "BMP")),
        ("exif-orientation-text", lambda: _jpeg_with(_exif_ascii_orientation(b"six"))),
        ("exif-orientation-9", lambda: _jpeg_with(_exif_orientation(9))),
        ("exif-orientation-0", lambda: _jpeg_with(_exif_orientation(0))),
        ("exif-orientation-6", lambda: _jpeg_with(_exif_orientation(6))),
        ("exif-corrupt-block", lambda: _jpeg_with(_exif_corrupt())),
        ("png-text-bomb", _text_bomb_png),
        ("zlib-bomb-png", lambda: save(Image.new("L", (zlib_bomb_side, zlib_bomb_side)), "PNG")),
        ("aspect-25-png", lambda: save(Image.new("RGB", (2500, 100)), "PNG")),
    ]  # fmt: skip
    bad: list[tuple[str, Callable[[], bytes]]] = [
        ("empty", lambda: b""),
        ("one-byte", lambda: b"\xff"),
        ("text", lambda: b"this is not an image at all"),
        ("html", lambda: b"<html><body>404</body></html>"),
        ("random-bytes", lambda: np.random.default_rng(3).bytes(4096)),
        ("jpeg-header-only", lambda: jpeg[:200]),
        ("jpeg-truncated", lambda: jpeg[: len(jpeg) // 2]),
        ("jpeg-corrupt", lambda: _flip_bytes(jpeg, 300)),
        ("png-header-only", lambda: png[:40]),
        ("png-truncated", lambda: png[: len(png) // 2]),
        ("png-corrupt", lambda: _flip_bytes(png, 60)),
        ("png-bad-zlib", lambda: png_raw(40, 30, b"")[:-20] + b"garbage-garbage-garb"),
        ("gif-truncated", lambda: gif[: len(gif) // 3]),
        ("gif-corrupt", lambda: _flip_bytes(gif, 800)),
        ("webp-truncated", lambda: webp[: len(webp) // 2]),
        ("webp-corrupt", lambda: _flip_bytes(webp, 30)),
        ("tiff-truncated", lambda: tiff[: len(tiff) // 2]),
        ("tiff-corrupt-header", lambda: _flip_bytes(tiff, 0, count=12)),
        ("png-20000x1", lambda: save(Image.new("L", (20000, 1)), "PNG")),
        ("png-65500x1", lambda: save(Image.new("L", (65500, 1)), "PNG")),
        ("png-1x65500", lambda: save(Image.new("L", (1, 65500)), "PNG")),
        ("png-aspect-100", lambda: save(Image.new("L", (5000, 50)), "PNG")),
        ("png-claims-100000x100000", lambda: png_raw(100000, 100000, b"\x00" * 100)),
        ("png-claims-zero-width", lambda: png_raw(0, 10, b"\x00" * 10)),
        ("jpeg-claims-65000x65000", lambda: _jpeg_claiming(65000, 65000)),
        ("jpeg-claims-60000x1", lambda: _jpeg_claiming(60000, 1)),
        ("gif-claims-65535x65535", lambda: b"GIF89a" + struct.pack("<HH", 65535, 65535) + gif[10:]),
    ]  # fmt: skip
    either = {"jpeg-corrupt", "png-corrupt", "png-bad-zlib", "webp-corrupt", "tiff-corrupt-header"}
    return [Case(name, make(), True) for name, make in good] + [
        Case(name, make(), None if name in either else False) for name, make in bad
    ]
