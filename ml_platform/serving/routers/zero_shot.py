"""`POST /v1/zero-shot`: top-k of free-text classes per image, with CLIP or SigLIP."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from PIL import Image
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile

from ml_platform.serving import images
from ml_platform.serving.analysis import StageClock
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.inputs import (
    body_kind,
    form_text,
    max_json_bytes,
    read_json,
    read_upload,
    zero_shot_body_images,
)
from ml_platform.serving.inputs import validate as validate_json
from ml_platform.serving.lazy import Loaded
from ml_platform.serving.metrics import Stage
from ml_platform.serving.openapi import ZERO_SHOT_STATUSES, error_responses, json_or_form_body
from ml_platform.serving.schemas import (
    ClassScore,
    InferenceTimings,
    OperationError,
    ZeroShotImageResult,
    ZeroShotRequest,
    ZeroShotResponse,
)
from ml_platform.serving.state import ServingState, state_of
from ml_platform.vision.zero_shot import ZeroShotKind, ZeroShotModel, load_zero_shot, top_k

log = logging.getLogger(__name__)
router = APIRouter(tags=["zero-shot"])
REQUEST_ADAPTER = TypeAdapter(ZeroShotRequest)
OPENAPI_BODY = json_or_form_body(
    {"$ref": "#/components/schemas/ZeroShotRequest"},
    {
        "type": "object",
        "required": ["request"],
        "properties": {
            "request": {
                "$ref": "#/components/schemas/ZeroShotRequest",
                "description": "ZeroShotRequest as JSON (a text field)",
            },
            "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    },
    json_fields=("request",),
)


@dataclass
class _Item:
    """One image of the request: its bytes, then its decoded image, or its error."""

    id: str
    url: str | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    error: ServingError | None = None


@router.post(
    "/v1/zero-shot",
    response_model=ZeroShotResponse,
    openapi_extra=OPENAPI_BODY,
    responses=error_responses(ZERO_SHOT_STATUSES, "#/components/schemas/ZeroShotResponse"),
)
async def zero_shot(request: Request) -> JSONResponse:
    """Per image, the top_k classes whose confidence is >= threshold, best first."""
    start = time.perf_counter()
    state = state_of(request)
    body, items = await _read(request, state)
    _check_limits(body, items, state)
    clock = StageClock()
    with clock.measure(Stage.FETCH):
        await _fetch_all(items, state)
    with state.metrics.time_operation("zero_shot"):
        response = await state.infer(_classify, state, body, items, clock)
    response.timings_ms.total_ms = round((time.perf_counter() - start) * 1000.0, 3)
    errors = [r.error for r in response.results]
    status = errors[0].status if errors and all(errors) and errors[0] else 200
    return JSONResponse(response.model_dump(mode="json"), status_code=status)


async def _read(request: Request, state: ServingState) -> tuple[ZeroShotRequest, list[_Item]]:
    limit = state.settings.max_image_bytes
    if body_kind(request) == "json":
        max_bytes = max_json_bytes(limit, zero_shot_body_images(state.options.max_zero_shot_images))
        body = await read_json(request, REQUEST_ADAPTER, max_bytes)
        return body, _items_of(body, limit)
    max_files = state.options.max_zero_shot_images
    async with request.form(max_files=max_files, max_fields=max_files + 1) as form:
        raw = form_text(form.get("request"), "request")
        body = validate_json(REQUEST_ADAPTER, raw, ("body", "request"))
        items = _items_of(body, limit)
        taken = {item.id for item in items}
        for index, upload in enumerate(form.getlist("images")):
            if isinstance(upload, UploadFile):
                name = _unique(upload.filename or f"upload-{index}", taken)
                items.append(_Item(name, data=await read_upload(upload, limit)))
    return body, items


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name#2`, `name#3`, ... when an earlier image already has that id."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    taken.add(candidate)
    return candidate


def _items_of(body: ZeroShotRequest, limit: int) -> list[_Item]:
    items = []
    for image in body.images:
        item = _Item(image.id, url=image.url)
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


async def _fetch_all(items: list[_Item], state: ServingState) -> None:
    """Fetch each URL item (its own URL: ids never decide what is fetched)."""
    wanted = [item for item in items if item.url is not None and item.data is None]
    if not wanted:
        return
    limit, deadline = state.settings.max_image_bytes, state.options.image_fetch_timeout_s
    async with httpx.AsyncClient(timeout=deadline) as client:
        for item in wanted:
            assert item.url is not None
            try:
                item.data = await images.fetch(
                    client, item.url, hosts=state.image_hosts, max_bytes=limit, deadline_s=deadline
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
        timings_ms=InferenceTimings(),
    )
    predictions: dict[int, list[ClassScore]] = {}
    if ready:
        loaded = _model(state, ZeroShotKind(body.model))
        response.model_id, response.weights = loaded.model.model_id, loaded.model.weights
        with clock.measure(Stage.EMBEDDING), loaded.lock:
            scores = _scores(loaded.model, ready, items, body.classes)
        for index, row in scores.items():
            ranked = top_k(row, body.classes, body.top_k, body.threshold)
            predictions[index] = [ClassScore(label=label, confidence=c) for label, c in ranked]
    response.results = [
        _result(item, predictions.get(i, []), state) for i, item in enumerate(items)
    ]
    response.timings_ms = clock.inference_timings(Stage.EMBEDDING)
    return response


def _scores(
    model: ZeroShotModel,
    ready: list[tuple[int, Image.Image]],
    items: list[_Item],
    classes: list[str],
) -> dict[int, NDArray[np.float32]]:
    """Scores by item index: one batch, or image by image when the batch fails, so that one
    image the model cannot take fails alone (its item gets the error)."""
    try:
        batch = model.scores([image for _, image in ready], classes)
        return {index: row for (index, _), row in zip(ready, batch, strict=True)}
    except Exception:  # a poison image (or a model bug): find out which, image by image
        log.warning("zero-shot batch of %d failed; scoring image by image", len(ready))
    scores: dict[int, NDArray[np.float32]] = {}
    for index, image in ready:
        try:
            scores[index] = model.scores([image], classes)[0]
        except Exception as exc:  # this image only
            log.exception("zero-shot failed on image %r", items[index].id)
            items[index].error = ServingError(
                ErrorKind.INVALID_IMAGE,
                f"the {model.kind.value} model could not process this image: "
                f"{type(exc).__name__}: {exc}",
            )
    return scores


def _decode_all(items: list[_Item], state: ServingState) -> None:
    for item in items:
        if item.data is None or item.error is not None:
            continue
        try:
            item.image = images.decode(item.data, state.decode).image
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
