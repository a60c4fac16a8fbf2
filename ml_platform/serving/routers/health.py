"""Open routes: `/healthz` (the process answers), `/readyz` (it can serve), `/metrics`.

`/readyz` reports each model: served (`ok`) or failed, with the reason. It is 503 while the
start-up preload runs (`loading`) and when nothing can be served (`unavailable`: the
registry does not answer and no classifier or zero-shot model is loaded). A failed model
(a champion or its embedder, the detector, a zero-shot model) degrades only the routes and
collections that need it: the answer is then 200 with `degraded` and the failing models
listed; an embedder that cannot load always degrades (embed and search on its type fail, even
when a champion serves on its random-weight variant). `warnings` never change the status:
they say when this server may answer with random weights (and why). It never waits long:
the registry ping has a deadline of its own.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ml_platform.home import random_weights_notice
from ml_platform.serving.model_cache import REGISTRY_ERRORS
from ml_platform.serving.openapi import OPEN_STATUSES, error_responses
from ml_platform.serving.preload import PreloadStatus
from ml_platform.serving.schemas import Health, Readiness
from ml_platform.serving.state import ServingState, state_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
REGISTRY_PING_S = 3.0


@router.get("/healthz", response_model=Health, responses=error_responses(OPEN_STATUSES))
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        **error_responses(OPEN_STATUSES),
        200: {"model": Readiness, "description": "Ready, or degraded: some models failed"},
        503: {"model": Readiness, "description": "Loading, or nothing can be served"},
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Per-model readiness; 503 only while loading or when nothing can be served."""
    state = state_of(request)
    preload = state.preloader
    registry = await _registry_problems(state)
    failed = {**({"model registry": _unprefixed(registry[0])} if registry else {}),
              **failing_models(state)}  # fmt: skip
    loaded = {str(k): v for k, v in state.champions.loaded_versions().items()}
    datasets = state.datasets.loaded_versions()
    models = {
        **{f"collection {k}": f"ok: serving version {v}" for k, v in loaded.items()},
        **{f"dataset {k}": f"ok: serving version {v}" for k, v in datasets.items()},
        **{name: "ok: loaded" for name in state.zero_shot.loaded()},
        **{name: f"failed: {why}" for name, why in failed.items()},
    }
    servable = bool(loaded or datasets or state.zero_shot.loaded_keys()) or not registry
    status = (
        "loading" if preload.status is PreloadStatus.LOADING
        else "unavailable" if not servable
        else "degraded" if failed
        else "ready"
    )  # fmt: skip
    reasons = [f"{name} {why}" if name == "model registry" else f"{name}: {why}"
               for name, why in failed.items()]  # fmt: skip
    if status == "loading":
        reasons.insert(0, f"loading models at start-up ({preload.step or 'starting'})")
    readiness = Readiness(
        status=status, reasons=reasons, models=models, failing=sorted(failed),
        warnings=weights_warnings(state), loaded_classifiers=loaded,
    )  # fmt: skip
    code = 503 if status in ("loading", "unavailable") else 200
    return JSONResponse(readiness.model_dump(mode="json"), status_code=code)


def _unprefixed(reason: str) -> str:
    return reason.removeprefix("model registry ")


def failing_models(state: ServingState) -> dict[str, str]:
    """Every model that failed to load (or serves stale), by name, with the reason."""
    return {
        **state.preloader.failed(),
        **state.champions.stale(),
        **state.datasets.stale(),
        **state.models.detector_failed(),
        **state.models.embedders_failed(),
        **state.zero_shot.failed(),
    }


def weights_warnings(state: ServingState) -> list[str]:
    """Said while this server may answer with random weights (it never changes the status)."""
    if not state.settings.allow_random_weights:
        return []
    return [random_weights_notice(state.settings)]


@router.get("/metrics", response_class=Response, responses=error_responses(OPEN_STATUSES))
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
