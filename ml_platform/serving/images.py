"""Image input for the API: base64 or upload bytes, or a URL fetched only from allowed hosts.

Decoding goes through `ml_platform.vision.decode` with the platform's byte and pixel limits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass

import httpx

from ml_platform.domain import ImageLimits
from ml_platform.redact import redact_text, redact_url
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.options import host_allowed, url_problem
from ml_platform.settings import fed_by
from ml_platform.vision.decode import (
    DecodedImage,
    ImageDecodeError,
    ImageTooLargeError,
    check_byte_size,
    decode_image,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeOptions(ImageLimits):
    """The serving side of `vision.decode`: the platform's limits, and the longest side
    analysed (`options_from(DecodeOptions, settings)`; built without settings, full size)."""

    max_bytes: int = fed_by("max_image_bytes")
    max_pixels: int = fed_by("max_image_pixels")
    max_side: int = fed_by("max_image_side")
    max_aspect: float = fed_by("max_image_aspect_ratio")
    reduce_to: int | None = fed_by("serve_max_decode_side", None)


def decode_base64(data: str, max_bytes: int) -> bytes:
    """The bytes of a base64 string (a `data:<type>;base64,` prefix is allowed)."""
    payload = data
    if data.startswith("data:"):
        header, comma, payload = data.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ServingError(
                ErrorKind.INVALID_IMAGE,
                "image_base64 starts with `data:` but is not a `data:<type>;base64,<data>` URL",
            )
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


def decode(data: bytes, options: DecodeOptions) -> DecodedImage:
    """RGB image with EXIF orientation applied, at most `reduce_to` on its longest side;
    400 when not an image, 413 over a limit."""
    try:
        check_byte_size(data, options.max_bytes)
        return decode_image(
            data,
            max_pixels=options.max_pixels,
            max_side=options.max_side,
            max_aspect=options.max_aspect,
            reduce_to=options.reduce_to,
        )
    except ImageTooLargeError as exc:
        raise ServingError(ErrorKind.IMAGE_TOO_LARGE, str(exc)) from exc
    except ImageDecodeError as exc:
        raise ServingError(
            ErrorKind.INVALID_IMAGE, f"{exc}; send a JPEG, PNG, WebP or another PIL format"
        ) from exc


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    hosts: frozenset[str],
    max_bytes: int,
    deadline_s: float,
) -> bytes:
    """GET `url` when its host is allowed; no redirects; at most `max_bytes` are read and
    the whole fetch (connect, headers, body) takes at most `deadline_s` seconds."""
    shown = redact_url(url)
    problem = url_problem(url)
    if problem is not None:
        raise ServingError(ErrorKind.INVALID_REQUEST, f"image_url {shown!r} {problem}")
    if not host_allowed(url, hosts):
        allowed = ", ".join(sorted(hosts)) or "none (image_url is disabled)"
        raise ServingError(
            ErrorKind.IMAGE_HOST_NOT_ALLOWED,
            f"image_url host is not allowed: {shown!r}; allowed hosts: {allowed}. "
            "Upload the image or send it as image_base64 instead",
        )
    try:
        async with asyncio.timeout(deadline_s):
            return await _get(client, url, shown, max_bytes)
    except TimeoutError as exc:
        raise ServingError(
            ErrorKind.IMAGE_FETCH_TIMEOUT,
            f"image_url {shown!r} was not fetched within {deadline_s:g} s (the whole download)",
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        reason = redact_text(f"{type(exc).__name__}: {exc}")
        log.warning("fetching %s failed: %s", shown, reason)
        raise ServingError(
            ErrorKind.IMAGE_FETCH_FAILED, f"could not fetch image_url {shown!r}: {reason}"
        ) from exc


async def _get(client: httpx.AsyncClient, url: str, shown: str, max_bytes: int) -> bytes:
    async with client.stream("GET", url, follow_redirects=False) as response:
        if response.status_code != 200:
            raise ServingError(
                ErrorKind.IMAGE_FETCH_FAILED,
                f"image_url {shown!r} answered HTTP {response.status_code} "
                "(redirects are not followed)",
            )
        return await _read_limited(response, max_bytes)


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
