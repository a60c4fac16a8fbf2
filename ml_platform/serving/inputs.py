"""Reading request bodies: JSON or multipart, validated by the pydantic schemas (422 otherwise)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from ml_platform.serving.errors import ErrorKind, ServingError

V = TypeVar("V")

JSON_SLACK_BYTES = 1_000_000  # room for the non-image part of a JSON body
# A zero-shot request's images together may weigh what this many full-size images do: 16
# images at the byte limit (641 MB of JSON at 30 MB each) would be a way to pin gigabytes.
ZERO_SHOT_BODY_IMAGES = 4
UPLOAD_CHUNK = 1 << 20


def body_kind(request: Request) -> str:
    """`json` or `multipart`; 415 for anything else."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/json", ""):
        return "json"
    if content_type == "multipart/form-data":
        return "multipart"
    raise HTTPException(
        status_code=415,
        detail=f"unsupported content type {content_type!r}; send application/json "
        "or multipart/form-data",
    )


def route_body_limit(path: str, max_image_bytes: int, max_zero_shot_images: int) -> int:
    """The most bytes a request body to `path` may have: its images at `max_image_bytes` as
    base64 plus slack (multipart bodies are smaller than the same images as base64); routes
    that take no image get the slack only."""
    images = {"/v1/analyze": 1, "/v1/predict": 1, "/v1/search": 1,
              "/v1/zero-shot": zero_shot_body_images(max_zero_shot_images)}  # fmt: skip
    count = images.get(path.rstrip("/"), 0)
    return max_json_bytes(max_image_bytes, count) if count else JSON_SLACK_BYTES


def zero_shot_body_images(max_zero_shot_images: int) -> int:
    """How many full-size images' worth of body a zero-shot request may send in all."""
    return min(max_zero_shot_images, ZERO_SHOT_BODY_IMAGES)


def max_json_bytes(max_image_bytes: int, images: int = 1) -> int:
    """The largest JSON body accepted: `images` base64 images at the byte limit, plus slack."""
    return images * ((max_image_bytes // 3 + 1) * 4) + JSON_SLACK_BYTES


async def read_json(request: Request, adapter: TypeAdapter[V], max_bytes: int) -> V:
    """The body parsed by `adapter`; 413 when longer than `max_bytes`, 422 when invalid."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _body_too_large(int(declared), max_bytes)
    body = await request.body()
    if len(body) > max_bytes:
        raise _body_too_large(len(body), max_bytes)
    return validate(adapter, body, ("body",))


def validate(adapter: TypeAdapter[V], raw: str | bytes, loc: tuple[str, ...]) -> V:
    """`raw` JSON validated by `adapter`; 422 with the errors, located under `loc`."""
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        for error in errors:
            error["loc"] = (*loc, *error["loc"])
        raise RequestValidationError(errors) from exc


def form_text(value: object, field: str) -> str:
    """A required text field of a multipart form; 422 when missing or a file."""
    if not isinstance(value, str):
        problem = "is missing" if value is None else "must be text, not a file"
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body", field), "msg": f"form field {field!r} {problem}"}]
        )
    return value


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """An uploaded file's bytes; 413 as soon as more than `max_bytes` have been read."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(UPLOAD_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ServingError(
                ErrorKind.IMAGE_TOO_LARGE,
                f"uploaded image {upload.filename!r} is over {max_bytes} bytes (the limit)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _body_too_large(size: int, max_bytes: int) -> ServingError:
    return ServingError(
        ErrorKind.IMAGE_TOO_LARGE,
        f"request body is {size} bytes; the limit is {max_bytes} (max_image_bytes as base64 "
        "plus room for the rest of the request)",
    )
