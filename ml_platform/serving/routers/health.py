"""Open routes: `/healthz` (the process answers), `/readyz` (it can serve), `/metrics`.

`/readyz` is 503 while the start-up preload runs (`loading`) and while something needed is
really broken (`degraded`): the registry does not answer, a champion or its embedder cannot
be loaded, the detector or a zero-shot model failed. Failures that do not stop serving are
`warnings`. It never waits long: the registry ping has a deadline of its own.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ml_platform.serving.model_cache import REGISTRY_ERRORS
from ml_platform.serving.preload import PreloadStatus
from ml_platform.serving.schemas import Health, Readiness
from ml_platform.serving.state import ServingState, state_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
REGISTRY_PING_S = 3.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Loading, or something is broken"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when ready; 503 with reasons while loading or broken (see the module docstring)."""
    state = state_of(request)
    reasons = []
    preload = state.preloader
    if preload.status is PreloadStatus.LOADING:
        reasons.append(f"loading models at start-up ({preload.step or 'starting'})")
    reasons += await _registry_problems(state)
    reasons += preload.problems()
    reasons += state.champions.problems()
    reasons += state.models.detector_problems()
    reasons += state.zero_shot.problems()
    loading = preload.status is PreloadStatus.LOADING
    readiness = Readiness(
        status="loading" if loading else "degraded" if reasons else "ready",
        reasons=reasons,
        warnings=state.models.embedder_problems(),
        loaded_classifiers={str(k): v for k, v in state.champions.loaded_versions().items()},
    )
    return JSONResponse(readiness.model_dump(mode="json"), status_code=503 if reasons else 200)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    serving_metrics = state_of(request).metrics
    return Response(serving_metrics.exposition(), media_type=serving_metrics.content_type)


async def _registry_problems(state: ServingState) -> list[str]:
    try:
        return await asyncio.wait_for(run_in_threadpool(_ping, state), REGISTRY_PING_S)
    except TimeoutError:
        return [f"model registry unreachable: no answer within {REGISTRY_PING_S:g} s"]


def _ping(state: ServingState) -> list[str]:
    try:
        state.registry.search_registered_models(max_results=1)
    except REGISTRY_ERRORS as exc:
        log.warning("readiness: model registry unreachable: %s", exc)
        return [f"model registry unreachable: {exc}"]
    return []
