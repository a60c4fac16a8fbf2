"""`GET /v1/collections/{id}/classifier`: the champion's metadata as the registry has it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import model_name
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.champion import focus_of
from ml_platform.serving.errors import ErrorKind, ServingError, registry_unreachable
from ml_platform.serving.model_cache import REGISTRY_ERRORS
from ml_platform.serving.openapi import CLASSIFIER_STATUSES, error_responses
from ml_platform.serving.schemas import ClassifierInfo, FocusModel, PathId
from ml_platform.serving.state import ServingState, state_of

router = APIRouter(tags=["collections"], responses=error_responses(CLASSIFIER_STATUSES))


@router.get("/v1/collections/{collection_id}/classifier")
async def classifier(request: Request, collection_id: PathId) -> ClassifierInfo:
    """The champion version, its tags and aliases, and the version this server serves."""
    state = state_of(request)
    info = await run_in_threadpool(_champion, state, collection_id)
    loaded = state.champions.loaded_versions().get(collection_id)
    return ClassifierInfo(
        collection_id=collection_id,
        model_name=info.name,
        version=info.version,
        aliases=sorted(info.aliases),
        tags=dict(sorted(info.tags.items())),
        focus=_focus(info),
        loaded_version=loaded,
    )


def _champion(state: ServingState, collection_id: int) -> ModelVersionInfo:
    try:
        info = get_champion(state.registry, collection_id)
    except REGISTRY_ERRORS as exc:
        raise registry_unreachable(exc) from exc
    if info is None:
        raise ServingError(
            ErrorKind.COLLECTION_NOT_FOUND,
            f"collection {collection_id} has no champion classifier (registered model "
            f"{model_name(collection_id)!r} is missing or has no `champion` alias)",
        )
    return info


def _focus(info: ModelVersionInfo) -> FocusModel | None:
    try:
        focus = focus_of(info)
    except ServingError:
        return None
    return FocusModel.of(focus)
