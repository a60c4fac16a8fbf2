"""What phones upload decodes: HEIC/HEIF and AVIF, through the same guards as JPEG."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ml_platform.store.image_store import EXTENSIONS
from ml_platform.vision.decode import ImageTooLargeError, decode_image

RED = (200, 20, 30)


def encoded(image_format: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """HEIF through pillow-heif's own writer, so PIL's opener is not registered by the test."""
    import pillow_heif

    buffer = io.BytesIO()
    image = Image.new("RGB", size, RED)
    if image_format == "HEIF":
        pillow_heif.from_pillow(image).save(buffer, quality=90)
    else:
        image.save(buffer, format=image_format, quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(("image_format", "extension"), [("HEIF", ".heic"), ("AVIF", ".avif")])
def test_a_phone_format_decodes_to_rgb_and_is_stored_under_its_extension(
    image_format: str, extension: str
) -> None:
    decoded = decode_image(encoded(image_format), max_pixels=10_000)
    assert decoded.format == image_format
    assert decoded.image.mode == "RGB" and decoded.image.size == (64, 48)
    red, green, blue = decoded.image.getpixel((32, 24))  # type: ignore[misc]
    assert red > 150 and green < 80 and blue < 80
    assert EXTENSIONS[image_format] == extension


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
def test_a_phone_format_over_the_pixel_limit_is_refused_before_decoding(
    image_format: str,
) -> None:
    with pytest.raises(ImageTooLargeError, match="limit"):
        decode_image(encoded(image_format, (200, 200)), max_pixels=10_000)


def test_one_callers_pixel_limit_never_binds_another_caller() -> None:
    """The limit is per call: a tiny one refused here leaves PIL's process-wide state as it was,
    so a thread decoding a large stored image at the same time is not refused."""
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError):
        decode_image(encoded("PNG", (200, 100)), max_pixels=100)

    assert before == Image.MAX_IMAGE_PIXELS
    assert decode_image(encoded("PNG", (200, 100)), max_pixels=1_000_000).image.size == (200, 100)
