"""`POST /v1/analyze`: one image, several operations, shared work computed once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile

from ml_platform.serving import images
from ml_platform.serving.analysis import ImageAnalysis, StageClock
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.inputs import (
    body_kind,
    form_text,
    max_json_bytes,
    read_json,
    read_upload,
    validate,
)
from ml_platform.serving.metrics import Stage
from ml_platform.serving.openapi import ANALYZE_STATUSES, error_responses, json_or_form_body
from ml_platform.serving.operations import Champions, resolve_champions, run_operations
from ml_platform.serving.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    AnalyzeTimings,
    ImageInfo,
    Operation,
    OperationOutcome,
)
from ml_platform.serving.state import ServingState, state_of

router = APIRouter(tags=["analyze"])

REQUEST_ADAPTER = TypeAdapter(AnalyzeRequest)
OPERATIONS_ADAPTER: TypeAdapter[list[Operation]] = TypeAdapter(list[Operation])

MULTIPART_DOC = {
    "type": "object",
    "required": ["image", "operations"],
    "properties": {
        "image": {"type": "string", "format": "binary"},
        "operations": {
            "description": "The operations as a JSON list (a text field)",
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/AnyOperation"},
        },
    },
}
OPENAPI_BODY = json_or_form_body(
    {"$ref": "#/components/schemas/AnalyzeRequest"}, MULTIPART_DOC, json_fields=("operations",)
)


@dataclass
class ImageInput:
    operations: list[Operation]
    data: bytes | None = None
    url: str | None = None


@router.post(
    "/v1/analyze",
    response_model=AnalyzeResponse,
    openapi_extra=OPENAPI_BODY,
    summary="Classify, embed and detect on one image",
    responses=error_responses(ANALYZE_STATUSES, "#/components/schemas/AnalyzeResponse"),
)
async def analyze(request: Request) -> JSONResponse:
    """One image (JSON with image_base64 or image_url, or a multipart upload) and operations."""
    start = time.perf_counter()
    state = state_of(request)
    parsed = await _read_input(request, state)
    clock = StageClock()
    data = await _image_bytes(parsed, state, clock)
    champions = await run_in_threadpool(
        resolve_champions, parsed.operations, state.champions, clock
    )
    response = await state.infer(_analyze, state, parsed.operations, data, champions, clock)
    response.timings_ms.total_ms = round((time.perf_counter() - start) * 1000.0, 3)
    state.metrics.observe_stages(dict(clock.seconds))
    return JSONResponse(response.model_dump(mode="json"), status_code=_status(response))


async def _read_input(request: Request, state: ServingState) -> ImageInput:
    limit = state.settings.max_image_bytes
    if body_kind(request) == "json":
        body = await read_json(request, REQUEST_ADAPTER, max_json_bytes(limit))
        parsed = ImageInput(body.operations, url=body.image_url)
        if body.image_base64 is not None:
            parsed.data = images.decode_base64(body.image_base64, limit)
    else:
        async with request.form(max_files=1, max_fields=2) as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise _missing_upload()
            operations = form_text(form.get("operations"), "operations")
            parsed = ImageInput(
                validate(OPERATIONS_ADAPTER, operations, ("body", "operations")),
                data=await read_upload(upload, limit),
            )
    _check_operation_count(parsed.operations, state.options.max_operations)
    return parsed


async def _image_bytes(parsed: ImageInput, state: ServingState, clock: StageClock) -> bytes:
    if parsed.data is not None:
        return parsed.data
    assert parsed.url is not None
    with clock.measure(Stage.FETCH):
        return await state.fetch_image(parsed.url)


def _analyze(
    state: ServingState,
    operations: list[Operation],
    data: bytes,
    champions: Champions,
    clock: StageClock,
) -> AnalyzeResponse:
    with clock.measure(Stage.DECODE):
        decoded = images.decode(data, state.decode)
    image, original = decoded.image, decoded.original_size or decoded.image.size
    analysis = ImageAnalysis(image, state.models, clock)
    outcomes = run_operations(operations, analysis, champions, state.metrics)
    return AnalyzeResponse(
        image=ImageInfo(
            width=image.width,
            height=image.height,
            original_width=original[0],
            original_height=original[1],
        ),
        results=outcomes,
        timings_ms=_timings(clock),
        detail=_all_failed_detail(outcomes),
    )


def _timings(clock: StageClock) -> AnalyzeTimings:
    return AnalyzeTimings(
        fetch_ms=clock.ms(Stage.FETCH),
        decode_ms=clock.ms(Stage.DECODE),
        detection_ms=clock.ms(Stage.DETECTION),
        embedding_ms=clock.ms(Stage.EMBEDDING),
        classification_ms=clock.ms(Stage.CLASSIFICATION),
    )


def _all_failed_detail(outcomes: list[OperationOutcome]) -> str | None:
    errors = [o.error for o in outcomes]
    if not errors or any(error is None for error in errors):
        return None
    return "; ".join(f"{o.operation.type}: {o.error.message}" for o in outcomes if o.error)


def _status(response: AnalyzeResponse) -> int:
    """200 when any operation succeeded, else the first operation's error status."""
    if response.detail is None:
        return 200
    first = response.results[0].error
    return first.status if first is not None else 200


def _check_operation_count(operations: list[Operation], limit: int) -> None:
    if len(operations) > limit:
        raise ServingError(
            ErrorKind.INVALID_REQUEST,
            f"{len(operations)} operations in one request; the limit is {limit}",
        )


def _missing_upload() -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", "image"), "msg": "multipart field 'image' (a file) "
          "is missing; or send JSON with image_base64 or image_url"}]
    )  # fmt: skip
