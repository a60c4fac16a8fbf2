"""Open routes: `/healthz` (the process answers), `/readyz` (it can serve), `/metrics`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ml_platform.serving.model_cache import REGISTRY_ERRORS
from ml_platform.serving.schemas import Health, Readiness
from ml_platform.serving.state import ServingState, state_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """503 with reasons when the registry is unreachable, a model failed to load, or a
    served champion could not be re-checked."""
    state = state_of(request)
    reasons = await run_in_threadpool(_registry_problems, state)
    reasons += state.champions.problems()
    reasons += state.models.problems()
    reasons += state.zero_shot.problems()
    readiness = Readiness(
        status="degraded" if reasons else "ready",
        reasons=reasons,
        loaded_classifiers={str(k): v for k, v in state.champions.loaded_versions().items()},
    )
    return JSONResponse(readiness.model_dump(mode="json"), status_code=503 if reasons else 200)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    serving_metrics = state_of(request).metrics
    return Response(serving_metrics.exposition(), media_type=serving_metrics.content_type)


def _registry_problems(state: ServingState) -> list[str]:
    try:
        state.registry.search_registered_models(max_results=1)
    except REGISTRY_ERRORS as exc:
        log.warning("readiness: model registry unreachable: %s", exc)
        return [f"model registry unreachable: {exc}"]
    return []
