"""`POST /v1/zero-shot`: top-k of free-text classes per image, with CLIP or SigLIP."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile

from ml_platform.serving import images
from ml_platform.serving.analysis import StageClock
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.inputs import body_kind, form_text, max_json_bytes, read_json, read_upload
from ml_platform.serving.inputs import validate as validate_json
from ml_platform.serving.lazy import Loaded
from ml_platform.serving.metrics import Stage
from ml_platform.serving.schemas import (
    ClassScore,
    OperationError,
    ZeroShotImageResult,
    ZeroShotRequest,
    ZeroShotResponse,
    ZeroShotTimings,
)
from ml_platform.serving.state import ServingState, state_of
from ml_platform.serving.zero_shot import ZeroShotKind, ZeroShotModel, load_zero_shot, top_k

router = APIRouter(tags=["zero-shot"])
REQUEST_ADAPTER = TypeAdapter(ZeroShotRequest)
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ZeroShotRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["request"],
                    "properties": {
                        "request": {"type": "string", "description": "ZeroShotRequest as JSON"},
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            },
        },
    }
}


@dataclass
class _Item:
    """One image of the request: its bytes, then its decoded image, or its error."""

    id: str
    data: bytes | None = None
    image: Image.Image | None = None
    error: ServingError | None = None


@router.post("/v1/zero-shot", response_model=ZeroShotResponse, openapi_extra=OPENAPI_BODY)
async def zero_shot(request: Request) -> JSONResponse:
    """Per image, the top_k classes whose confidence is >= threshold, best first."""
    start = time.perf_counter()
    state = state_of(request)
    body, items = await _read(request, state)
    _check_limits(body, items, state)
    clock = StageClock()
    with clock.measure(Stage.FETCH):
        await _fetch_all(body, items, state)
    with state.metrics.time_operation("zero_shot"):
        response = await state.infer(_classify, state, body, items, clock)
    response.timings_ms.total_ms = round((time.perf_counter() - start) * 1000.0, 3)
    errors = [r.error for r in response.results]
    status = errors[0].status if errors and all(errors) and errors[0] else 200
    return JSONResponse(response.model_dump(mode="json"), status_code=status)


async def _read(request: Request, state: ServingState) -> tuple[ZeroShotRequest, list[_Item]]:
    limit = state.settings.max_image_bytes
    if body_kind(request) == "json":
        max_bytes = max_json_bytes(limit, state.options.max_zero_shot_images)
        body = await read_json(request, REQUEST_ADAPTER, max_bytes)
        return body, _items_of(body, limit)
    max_files = state.options.max_zero_shot_images
    async with request.form(max_files=max_files, max_fields=max_files + 1) as form:
        raw = form_text(form.get("request"), "request")
        body = validate_json(REQUEST_ADAPTER, raw, ("body", "request"))
        items = _items_of(body, limit)
        for index, upload in enumerate(form.getlist("images")):
            if isinstance(upload, UploadFile):
                name = upload.filename or f"upload-{index}"
                items.append(_Item(name, data=await read_upload(upload, limit)))
    return body, items


def _items_of(body: ZeroShotRequest, limit: int) -> list[_Item]:
    items = []
    for image in body.images:
        item = _Item(image.id)
        if image.image_base64 is not None:
            try:
                item.data = images.decode_base64(image.image_base64, limit)
            except ServingError as exc:
                item.error = exc
        items.append(item)
    return items


def _check_limits(body: ZeroShotRequest, items: list[_Item], state: ServingState) -> None:
    options = state.options
    if not items:
        raise ServingError(ErrorKind.INVALID_REQUEST, "no images: send `images` or upload files")
    if len(items) > options.max_zero_shot_images:
        raise ServingError(
            ErrorKind.INVALID_REQUEST,
            f"{len(items)} images in one request; the limit is {options.max_zero_shot_images}",
        )
    if len(body.classes) > options.max_zero_shot_classes:
        raise ServingError(
            ErrorKind.INVALID_REQUEST,
            f"{len(body.classes)} classes; the limit is {options.max_zero_shot_classes}",
        )


async def _fetch_all(body: ZeroShotRequest, items: list[_Item], state: ServingState) -> None:
    urls = {image.id: image.url for image in body.images if image.url is not None}
    if not urls:
        return
    limit = state.settings.max_image_bytes
    async with httpx.AsyncClient(timeout=state.options.image_fetch_timeout_s) as client:
        for item in items:
            url = urls.get(item.id) if item.data is None and item.error is None else None
            if url is None:
                continue
            try:
                item.data = await images.fetch(
                    client, url, hosts=state.image_hosts, max_bytes=limit
                )
            except ServingError as exc:
                item.error = exc


def _classify(
    state: ServingState, body: ZeroShotRequest, items: list[_Item], clock: StageClock
) -> ZeroShotResponse:
    with clock.measure(Stage.DECODE):
        _decode_all(items, state)
    ready = [(index, item.image) for index, item in enumerate(items) if item.image is not None]
    response = ZeroShotResponse(
        model=body.model,
        scoring="softmax" if body.model == ZeroShotKind.CLIP.value else "sigmoid",
        results=[],
        timings_ms=ZeroShotTimings(),
    )
    predictions: dict[int, list[ClassScore]] = {}
    if ready:
        loaded = _model(state, ZeroShotKind(body.model))
        response.model_id, response.weights = loaded.model.model_id, loaded.model.weights
        with clock.measure(Stage.EMBEDDING), loaded.lock:
            scores = loaded.model.scores([image for _, image in ready], body.classes)
        for (index, _), row in zip(ready, scores, strict=True):
            ranked = top_k(row, body.classes, body.top_k, body.threshold)
            predictions[index] = [ClassScore(label=label, confidence=c) for label, c in ranked]
    response.results = [
        _result(item, predictions.get(i, []), state) for i, item in enumerate(items)
    ]
    response.timings_ms = ZeroShotTimings(
        fetch_ms=clock.ms(Stage.FETCH),
        decode_ms=clock.ms(Stage.DECODE),
        inference_ms=clock.ms(Stage.EMBEDDING),
    )
    return response


def _decode_all(items: list[_Item], state: ServingState) -> None:
    settings = state.settings
    for item in items:
        if item.data is None or item.error is not None:
            continue
        try:
            item.image = images.decode(
                item.data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            )
        except ServingError as exc:
            item.error = exc


def _model(state: ServingState, kind: ZeroShotKind) -> Loaded[ZeroShotModel]:
    settings, options = state.settings, state.options
    model_id = (
        (options.clip_zero_shot_model or settings.clip_model)
        if kind is ZeroShotKind.CLIP
        else options.siglip_model
    )
    return state.zero_shot.get(
        f"{kind.value}:{model_id}",
        lambda: load_zero_shot(
            kind,
            model_id,
            allow_random_weights=settings.allow_random_weights,
            device=settings.device,
        ),
    )


def _result(item: _Item, predictions: list[ClassScore], state: ServingState) -> ZeroShotImageResult:
    if item.error is None:
        return ZeroShotImageResult(id=item.id, predictions=predictions)
    state.metrics.error(item.error.kind)
    error = OperationError(
        kind=item.error.kind, status=item.error.status, message=item.error.message
    )
    return ZeroShotImageResult(id=item.id, error=error)
