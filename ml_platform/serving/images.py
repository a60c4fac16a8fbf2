"""Image input for the API: base64 or upload bytes, or a URL fetched only from allowed hosts.

Decoding goes through `ml_platform.vision.decode` with the platform's byte and pixel limits.
"""

from __future__ import annotations

import base64
import binascii
import logging

import httpx
from PIL import Image

from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.options import host_allowed
from ml_platform.vision.decode import (
    ImageDecodeError,
    ImageTooLargeError,
    check_byte_size,
    decode_image,
)

log = logging.getLogger(__name__)


def decode_base64(data: str, max_bytes: int) -> bytes:
    """The bytes of a base64 string (a `data:...;base64,` prefix is allowed)."""
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    if len(payload) > (max_bytes // 3 + 1) * 4 + 8:
        raise ServingError(
            ErrorKind.IMAGE_TOO_LARGE, f"base64 image exceeds the limit of {max_bytes} bytes"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServingError(
            ErrorKind.INVALID_IMAGE, f"image_base64 is not valid base64: {exc}"
        ) from exc


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """RGB image with EXIF orientation applied; 400 when not an image, 413 over a limit."""
    try:
        check_byte_size(data, max_bytes)
        return decode_image(data, max_pixels=max_pixels).image
    except ImageTooLargeError as exc:
        raise ServingError(ErrorKind.IMAGE_TOO_LARGE, str(exc)) from exc
    except ImageDecodeError as exc:
        raise ServingError(
            ErrorKind.INVALID_IMAGE, f"{exc}; send a JPEG, PNG, WebP or another PIL format"
        ) from exc


async def fetch(
    client: httpx.AsyncClient, url: str, *, hosts: frozenset[str], max_bytes: int
) -> bytes:
    """GET `url` when its host is allowed; no redirects; at most `max_bytes` are read."""
    if not host_allowed(url, hosts):
        allowed = ", ".join(sorted(hosts)) or "none (image_url is disabled)"
        raise ServingError(
            ErrorKind.IMAGE_HOST_NOT_ALLOWED,
            f"image_url host is not allowed: {url!r}; allowed hosts: {allowed}. "
            "Upload the image or send it as image_base64 instead",
        )
    try:
        async with client.stream("GET", url, follow_redirects=False) as response:
            _check_response(url, response)
            return await _read_limited(response, max_bytes)
    except httpx.HTTPError as exc:
        log.warning("fetching %s failed: %s", url, exc)
        raise ServingError(
            ErrorKind.IMAGE_FETCH_FAILED, f"could not fetch image_url {url!r}: {exc}"
        ) from exc


def _check_response(url: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        raise ServingError(
            ErrorKind.IMAGE_FETCH_FAILED,
            f"image_url {url!r} answered HTTP {response.status_code} (redirects are not followed)",
        )


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int) -> ServingError:
    return ServingError(
        ErrorKind.IMAGE_TOO_LARGE,
        f"image_url body is at least {size} bytes; the limit is {max_bytes}",
    )
