"""Curation routes: what a collection's moderators should look at, from its champion.

`GET /v1/collections/{id}/suggestions`, `.../label-issues`, `.../review-queue`; each calls
`services.curation` (as `ml-platform suggest | audit | review-queue` do). The answers are
suggestions for a person: nothing here changes a label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from ml_platform.model_registry.versions import ModelNotFoundError
from ml_platform.services import curation
from ml_platform.services.curation_scores import (
    ChampionView,
    CurationError,
    CurationProblem,
    champion_view,
)
from ml_platform.serving.errors import ErrorKind, ServingError, registry_unreachable
from ml_platform.serving.model_cache import REGISTRY_ERRORS
from ml_platform.serving.openapi import error_responses
from ml_platform.serving.schemas import PathId
from ml_platform.serving.state import ServingState, state_of
from ml_platform.store.layout import Layout

STATUSES = (401, 404, 409, 413, 422, 500, 503)  # 413: every route has a body limit
router = APIRouter(tags=["curation"], responses=error_responses(STATUSES))
Limit = Annotated[int, Query(ge=1, le=curation.MAX_LIMIT)]
T = TypeVar("T")

KIND = {
    CurationProblem.UNKNOWN_COLLECTION: ErrorKind.COLLECTION_NOT_FOUND,
    CurationProblem.NO_CHAMPION: ErrorKind.COLLECTION_NOT_FOUND,
    CurationProblem.NO_OUT_OF_FOLD: ErrorKind.INCOMPATIBLE_CLASSIFIER,
    CurationProblem.BAD_PARAMETER: ErrorKind.INVALID_REQUEST,
}


class CurationAnswer(BaseModel):
    """What every curation route answers with: the collection and the champion version asked.
    Read from the service's answer (`services.curation`), whose fields these mirror."""

    collection_id: int
    model_version: str


class SuggestionItem(BaseModel):
    image_id: int
    probability: float


class SuggestionsResponse(CurationAnswer):
    suggestions: list[SuggestionItem]


class IssueItem(BaseModel):
    image_id: int
    kind: str  # likely_not_member | likely_member
    score: float
    tier: str  # likely (both views contradict the label) | suspected


class LabelIssuesResponse(CurationAnswer):
    issues: list[IssueItem]


class QueueItem(BaseModel):
    image_id: int
    reason: str  # uncertain | label_issue
    score: float


class ReviewQueueResponse(CurationAnswer):
    queue: list[QueueItem]


@router.get("/v1/collections/{collection_id}/suggestions")
async def suggestions(
    request: Request,
    collection_id: PathId,
    limit: Limit = curation.DEFAULT_SUGGESTIONS,
    min_probability: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
) -> SuggestionsResponse:
    """Images neither members nor rejected, by champion probability, near-duplicates collapsed."""
    found = await _answer(
        request, collection_id,
        lambda layout, view: curation.suggestions(layout, view, limit, min_probability),
    )  # fmt: skip
    return SuggestionsResponse.model_validate(found, from_attributes=True)


@router.get("/v1/collections/{collection_id}/label-issues")
async def label_issues(request: Request, collection_id: PathId) -> LabelIssuesResponse:
    """Members that probably do not belong and rejections that probably do (out-of-fold)."""
    found = await _answer(request, collection_id, curation.label_issues)
    return LabelIssuesResponse.model_validate(found, from_attributes=True)


@router.get("/v1/collections/{collection_id}/review-queue")
async def review_queue(
    request: Request, collection_id: PathId, limit: Limit = curation.DEFAULT_QUEUE
) -> ReviewQueueResponse:
    """The images whose labels would teach the classifier most, each with its reason."""
    found = await _answer(
        request, collection_id, lambda layout, view: curation.review(layout, view, limit)
    )
    return ReviewQueueResponse.model_validate(found, from_attributes=True)


async def _answer(
    request: Request, collection_id: int, ask: Callable[[Layout, ChampionView], T]
) -> T:
    state = state_of(request)
    return await run_in_threadpool(_ask, state, collection_id, ask)


def _ask(state: ServingState, collection_id: int, ask: Callable[[Layout, ChampionView], T]) -> T:
    layout = Layout.for_settings(state.settings)
    try:
        view = champion_view(
            layout, state.registry, collection_id, state.settings.mlflow_artifact_root
        )
        return ask(layout, view)
    except CurationError as exc:
        raise ServingError(KIND[exc.problem], str(exc)) from exc
    except ModelNotFoundError as exc:
        raise ServingError(ErrorKind.COLLECTION_NOT_FOUND, str(exc)) from exc
    except REGISTRY_ERRORS as exc:
        raise registry_unreachable(exc) from exc
