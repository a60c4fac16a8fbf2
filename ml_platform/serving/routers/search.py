"""`POST /v1/search`: the catalog's images nearest to a text, an image, an image id or a
collection, among one focus's indexed images, with filters (`ml_platform.services.search`).

JSON, or multipart with the JSON in a `request` field and the example image as `image`.
The index is read from the Store (compacted generation + newer batch shards) and kept in
memory per app, refreshed every few seconds: a replica needs no local home.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from starlette.datastructures import UploadFile

from ml_platform.domain import Focus
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.services import search as service
from ml_platform.services.search_encoders import linear_direction, text_features, text_tower_of
from ml_platform.serving import images
from ml_platform.serving.analysis import ImageAnalysis, StageClock
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.inputs import body_kind, form_text, max_json_bytes, read_json, read_upload
from ml_platform.serving.inputs import validate as validate_json
from ml_platform.serving.openapi import SEARCH_STATUSES, error_responses
from ml_platform.serving.routers.thumbnails import thumbnail_url
from ml_platform.serving.routers.zero_shot import _model as zero_shot_model
from ml_platform.serving.schemas import MAX_ID
from ml_platform.serving.state import ServingState, state_of
from ml_platform.store.search_cache import IndexCache
from ml_platform.vision.zero_shot import ZeroShotKind

router = APIRouter(tags=["search"])
Id = Annotated[int, Field(ge=0, le=MAX_ID)]


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pet_id: Id | None = None
    collection_id: Id | None = Field(None, description="members of this collection only")
    exclude_collection_id: Id | None = Field(
        None, description="leave out this collection's members and rejected images"
    )
    batch: str | None = Field(None, max_length=200)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None


class SearchRequest(BaseModel):
    """Exactly one of text, image_base64, image_url (or a multipart `image`), image_id,
    collection_id."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=1000)
    image_base64: str | None = None
    image_url: str | None = Field(None, max_length=2000)
    image_id: Id | None = None
    collection_id: Id | None = None
    focus: str | None = Field(None, description="<derivative>__<embedding type>")
    limit: int = Field(service.DEFAULT_LIMIT, ge=1, le=service.MAX_LIMIT)
    filters: SearchFilters = SearchFilters()


class SearchHit(BaseModel):
    image_id: int
    score: float
    thumbnail_url: str


class SearchResponse(BaseModel):
    focus: str
    query: dict[str, Any]
    results: list[SearchHit]
    timings_ms: dict[str, float]


ADAPTER = TypeAdapter(SearchRequest)


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    responses=error_responses(SEARCH_STATUSES),
)
async def search(request: Request) -> SearchResponse:
    """The `limit` most similar indexed images, best first (cosine `score`)."""
    start = time.perf_counter()
    state = state_of(request)
    body, upload = await _read(request, state)
    data = await _image_bytes(body, upload, state)
    query = service.Query(body.text, data, body.image_id, body.collection_id)
    with state.metrics.time_operation("search"):
        result = await state.infer(_search, state, state.search_index, body, query)
    timings = {**result.timings_ms, "total_ms": round((time.perf_counter() - start) * 1000, 3)}
    hits = [SearchHit(image_id=h.image_id, score=h.score, thumbnail_url=thumbnail_url(h.image_id))
            for h in result.hits]  # fmt: skip
    return SearchResponse(focus=result.focus.key, query=result.query, results=hits,
                          timings_ms=timings)  # fmt: skip


def _search(
    state: ServingState, cache: IndexCache, body: SearchRequest, query: service.Query
) -> service.SearchResult:
    f = body.filters
    filters = service.Filters(f.pet_id, f.collection_id, f.exclude_collection_id, f.batch,
                              f.created_after, f.created_before)  # fmt: skip
    try:
        focus = service.parse_focus(body.focus) if body.focus else None
        default = service.parse_focus(state.settings.cluster_focus)
        return service.search(
            cache.layout, cache, _encoders(state), query, focus=focus, default_focus=default,
            limit=body.limit, filters=filters,
        )  # fmt: skip
    except service.SearchError as exc:
        raise _serving_error(exc) from exc


def _encoders(state: ServingState) -> service.Encoders:
    def text(focus: Focus, value: str) -> service.Encoded:
        kind = ZeroShotKind(text_tower_of(focus))
        loaded = zero_shot_model(state, kind)
        with loaded.lock:
            model = loaded.model
            vector = text_features(model.model, model.tokenizer, value, model.device)
        return service.Encoded(vector, {"text_model": model.model_id, "weights": model.weights})

    def image(focus: Focus, data: bytes) -> service.Encoded:
        decoded = images.decode(data, state.decode).image
        analysis = ImageAnalysis(decoded, state.models, StageClock())
        embedder = state.models.embedder(focus.embedding_type)
        vector = analysis.embedding(focus.derivative_type, focus.embedding_type)
        return service.Encoded(vector, {"embedder": embedder.model_id, "weights": embedder.weights})

    def champion(collection_id: int) -> tuple[Focus, service.Encoded | None] | None:
        try:
            found = state.champions.get(collection_id)
        except ServingError as exc:
            if exc.kind is ErrorKind.COLLECTION_NOT_FOUND:
                return None
            raise
        python_model = found.model.unwrap_python_model()  # type: ignore[no-untyped-call]
        direction = linear_direction(getattr(python_model, "estimator", None))
        details: dict[str, object] = {"direction": "champion", "model_name": found.info.name,
                   "model_version": found.version,
                   "weights": found.info.tags.get(VersionTag.WEIGHTS.value)}  # fmt: skip
        return found.focus, None if direction is None else service.Encoded(direction, details)

    return service.Encoders(text, image, champion)


async def _read(request: Request, state: ServingState) -> tuple[SearchRequest, bytes | None]:
    limit = state.settings.max_image_bytes
    if body_kind(request) == "json":
        return await read_json(request, ADAPTER, max_json_bytes(limit)), None
    async with request.form(max_files=1, max_fields=2) as form:
        body = validate_json(
            ADAPTER, form_text(form.get("request"), "request"), ("body", "request")
        )
        upload = form.get("image")
        data = await read_upload(upload, limit) if isinstance(upload, UploadFile) else None
    return body, data


async def _image_bytes(
    body: SearchRequest, upload: bytes | None, state: ServingState
) -> bytes | None:
    given = [x for x in (body.image_base64, body.image_url, upload) if x is not None]
    if len(given) > 1:
        raise ServingError(
            ErrorKind.INVALID_REQUEST, "send one image: image_base64, image_url or an upload"
        )
    limit = state.settings.max_image_bytes
    if body.image_base64 is not None:
        return images.decode_base64(body.image_base64, limit)
    if body.image_url is None:
        return upload
    return await state.fetch_image(body.image_url)


def _serving_error(exc: service.SearchError) -> ServingError:
    kinds = {404: ErrorKind.IMAGE_NOT_FOUND, 409: ErrorKind.INCOMPATIBLE_CLASSIFIER,
             503: ErrorKind.MODEL_UNAVAILABLE}  # fmt: skip
    return ServingError(kinds.get(exc.status, ErrorKind.INVALID_REQUEST), str(exc))
