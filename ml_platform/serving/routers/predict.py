"""`POST /v1/predict`: the top-k classes of one image from a dataset's fine-tuned champion."""

from __future__ import annotations

import json
import time

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile

from ml_platform.serving import images
from ml_platform.serving.analysis import StageClock
from ml_platform.serving.dataset_models import DatasetModel
from ml_platform.serving.inputs import body_kind, form_text, max_json_bytes, read_json, read_upload
from ml_platform.serving.inputs import validate as validate_json
from ml_platform.serving.metrics import Stage
from ml_platform.serving.openapi import PREDICT_STATUSES, error_responses, json_or_form_body
from ml_platform.serving.predict_schemas import (
    MultipartFields,
    PredictRequest,
    PredictResponse,
)
from ml_platform.serving.schemas import ClassScore
from ml_platform.serving.state import ServingState, state_of

router = APIRouter(tags=["predict"])
REQUEST_ADAPTER = TypeAdapter(PredictRequest)
FIELDS_ADAPTER = TypeAdapter(MultipartFields)
OPENAPI_BODY = json_or_form_body(
    PredictRequest.model_json_schema(),
    {
        "type": "object",
        "required": ["dataset", "image"],
        "properties": {
            "dataset": {"type": "string"},
            "top_k": {"type": "integer", "default": 5},
            "image": {"type": "string", "format": "binary"},
        },
    },
)


@router.post("/v1/predict", response_model=PredictResponse, openapi_extra=OPENAPI_BODY,
             responses=error_responses(PREDICT_STATUSES),
             summary="Top-k classes of a dataset's fine-tuned classifier")  # fmt: skip
async def predict(request: Request) -> JSONResponse:
    """JSON `{dataset, image_base64 | image_url, top_k}` or multipart (`dataset`, `top_k`,
    `image` file)."""
    start = time.perf_counter()
    state = state_of(request)
    dataset, top_k, data, url = await _read(request, state)
    clock = StageClock()
    if data is None:
        with clock.measure(Stage.FETCH):
            data = await state.fetch_image(url or "")
    loaded = await run_in_threadpool(state_of(request).datasets.get, dataset)
    response = await state.infer(_predict, state, loaded, data, top_k, clock)
    response.timings_ms.total_ms = round((time.perf_counter() - start) * 1000.0, 3)
    state.metrics.observe_stages(dict(clock.seconds))
    return JSONResponse(response.model_dump(mode="json"))


async def _read(request: Request, state: ServingState) -> tuple[str, int, bytes | None, str | None]:
    limit = state.settings.max_image_bytes
    if body_kind(request) == "json":
        body = await read_json(request, REQUEST_ADAPTER, max_json_bytes(limit))
        data = None if body.image_base64 is None else images.decode_base64(body.image_base64, limit)
        return body.dataset, body.top_k, data, body.image_url
    async with request.form(max_files=1, max_fields=2) as form:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body", "image"),
                  "msg": "multipart field 'image' (a file) is missing"}]
            )  # fmt: skip
        fields = {"dataset": form_text(form.get("dataset"), "dataset")}
        top_k = form.get("top_k")
        if top_k is not None:
            fields["top_k"] = form_text(top_k, "top_k")
        raw = json.dumps(fields)  # numeric strings validate as integers (lax mode)
        parsed = validate_json(FIELDS_ADAPTER, raw, ("body",))
        return parsed.dataset, parsed.top_k, await read_upload(upload, limit), None


def _predict(
    state: ServingState, loaded: DatasetModel, data: bytes, top_k: int, clock: StageClock
) -> PredictResponse:
    with clock.measure(Stage.DECODE):
        image = images.decode(data, state.decode).image
    with state.metrics.time_operation("predict"), clock.measure(Stage.CLASSIFICATION):
        probabilities = loaded.model.predict_images([image])[0]
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    names = loaded.model.class_names
    return PredictResponse(
        dataset=loaded.dataset, model_name=loaded.name, model_version=loaded.version,
        model_variant=loaded.model.variant,
        predictions=[ClassScore(label=names[i], confidence=float(probabilities[i]))
                     for i in order],
        timings_ms=clock.inference_timings(Stage.CLASSIFICATION),
        label_weights=loaded.label_weights, labels=loaded.labels,
    )  # fmt: skip
