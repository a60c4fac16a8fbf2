"""`GET /v1/pets/{pet_id}/clusters`: clusters and hero images from the latest materialization."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, computed_field

from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.openapi import PET_STATUSES, error_responses
from ml_platform.serving.routers.thumbnails import thumbnail_url
from ml_platform.serving.schemas import PathId
from ml_platform.serving.state import state_of

router = APIRouter(tags=["pets"], responses=error_responses(PET_STATUSES))


class HeroPart(BaseModel):
    value: float
    weight: float
    contribution: float


class Hero(BaseModel):
    image_id: int
    score: float
    parts: dict[str, HeroPart]
    suppressed_duplicates: list[int]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def thumbnail_url(self) -> str:
        """The image's thumbnail, `GET /v1/images/{image_id}/thumbnail`."""
        return thumbnail_url(self.image_id)


class PetCluster(BaseModel):
    cluster_id: int
    size: int
    share: float
    heroes: list[Hero]


class PetClustersResponse(BaseModel):
    pet_id: int
    focus: str
    cluster_version: int
    updated_at: str
    n_images: int
    n_outliers: int
    silhouette: float | None
    method: str
    weights: str | None = Field(
        None,
        description="`pretrained` or `random`: the embedder weights the clusters were computed "
        "with (random vectors group nothing real); null for heroes written before it was kept",
    )
    clusters: list[PetCluster]


@router.get("/v1/pets/{pet_id}/clusters")
async def pet_clusters(request: Request, pet_id: PathId) -> PetClustersResponse:
    """A pet's clusters (id, size, share of its images) with hero images and score parts."""
    cache = state_of(request).clusters
    payload = await run_in_threadpool(cache.get, pet_id)
    if payload is None:
        raise ServingError(
            ErrorKind.PET_NOT_FOUND,
            f"pet {pet_id} has no clusters: unknown pet, or its images are not clustered yet",
        )
    return PetClustersResponse.model_validate(payload)
