"""`GET /v1/images/{image_id}/thumbnail`: the stored thumbnail of one ingested image."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.openapi import PET_STATUSES, error_responses
from ml_platform.serving.schemas import PathId
from ml_platform.serving.state import state_of
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from ml_platform.store.thumbnails_table import has_thumbnails, read_thumbnails

router = APIRouter(tags=["images"])


def thumbnail_url(image_id: int) -> str:
    """Where the clusters API points a client for an image's thumbnail."""
    return f"/v1/images/{image_id}/thumbnail"


@router.get(
    "/v1/images/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(PET_STATUSES)},
)
async def thumbnail(request: Request, image_id: PathId) -> Response:
    """The image scaled to fit 256 px, as the `thumbnails` asset stored it (JPEG)."""
    data = await run_in_threadpool(_thumbnail, state_of(request).settings, image_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _thumbnail(settings: Settings, image_id: int) -> bytes:
    layout = Layout.for_settings(settings)  # the shared store: a replica needs no local home
    batch = layout.metadata().batch_of(image_id)
    if batch is None:
        raise _missing(f"image {image_id} is unknown: no ingestion batch holds it")
    made = has_thumbnails(layout, batch)
    row = read_thumbnails(layout, batch, ids=[image_id]).get(image_id) if made else None
    if row is None:
        raise _missing(
            f"image {image_id} has no thumbnail yet: materialize `thumbnails` for batch {batch}"
        )
    if row.data is None:
        raise _missing(f"image {image_id} has no thumbnail: {row.error}")
    return row.data


def _missing(message: str) -> ServingError:
    return ServingError(ErrorKind.IMAGE_NOT_FOUND, message)
