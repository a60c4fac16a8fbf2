"""The FastAPI app: `create_app(settings)` wires routers, auth, errors and metrics.

Every app has its own state (model caches, Prometheus registry), so several can live in one
process (tests); `run_server` serves one with uvicorn. The lifespan starts the preload
(settings.serve_preload) and stops the background threads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ml_platform import telemetry
from ml_platform.redact import redact_url
from ml_platform.serving import alias_reads
from ml_platform.serving.auth import require_token
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.inputs import route_body_limit
from ml_platform.serving.middleware import BodyLimit, CatchAll, ObserveLatency, Traced
from ml_platform.serving.openapi import build_openapi, install_docs
from ml_platform.serving.options import ServeOptions, options_from_settings
from ml_platform.serving.routers import analyze, collections, health, pets, thumbnails, zero_shot
from ml_platform.serving.routers import curation as curation_router
from ml_platform.serving.routers import predict as predict_router
from ml_platform.serving.routers import search as search_router
from ml_platform.serving.schemas import AnalyzeRequest, ZeroShotRequest
from ml_platform.serving.state import ServingState, build_state, state_of
from ml_platform.serving.vision_models import SETTINGS_FACTORIES, ModelFactories
from ml_platform.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    options: ServeOptions | None = None,
    *,
    factories: ModelFactories = SETTINGS_FACTORIES,
) -> FastAPI:
    """The serving app; ``options`` default to what the settings say (`options_from_settings`).
    The factories replace `build_embedder`/`get_detector` (tests, tuning)."""
    app = FastAPI(
        title="ml_platform serving",
        version="1",
        description="Collection classifiers, embeddings, detections and zero-shot labels.",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.serving = build_state(settings, options or options_from_settings(settings), factories)
    guarded = [Depends(require_token)]
    app.include_router(analyze.router, dependencies=guarded)
    app.include_router(zero_shot.router, dependencies=guarded)
    app.include_router(collections.router, dependencies=guarded)
    app.include_router(pets.router, dependencies=guarded)
    app.include_router(predict_router.router, dependencies=guarded)
    app.include_router(thumbnails.router, dependencies=guarded)
    app.include_router(search_router.router, dependencies=guarded)
    app.include_router(curation_router.router, dependencies=guarded)
    app.include_router(health.router)
    install_docs(app)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimit, limit_for=_body_limits(app.state.serving))
    app.add_middleware(CatchAll, metrics=app.state.serving.metrics)
    app.add_middleware(ObserveLatency, metrics=app.state.serving.metrics)
    app.add_middleware(Traced)
    bodies = (AnalyzeRequest, ZeroShotRequest)
    app.openapi = lambda: build_openapi(app, bodies)  # type: ignore[method-assign]
    return app


def run_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: ServeOptions | None = None,
) -> None:
    """Serve `create_app(settings)` with uvicorn until interrupted."""
    import uvicorn

    from ml_platform.vision.hub import hub_offline

    if hub_offline():  # detected once: models then load from the local cache without retries
        os.environ["HF_HUB_OFFLINE"] = "1"
        log.warning("the model hub is unreachable: loading models from the local cache only")
    log.info("serving on http://%s:%s (registry %s)", host, port, redact_url(settings.tracking_uri))
    uvicorn.run(create_app(settings, options), host=host, port=port, log_level="info")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.serving
    if state.settings.serve_preload:
        state.preloader.start()
    state.budget.start()
    yield
    state.budget.stop()
    state.preloader.stop()
    state.champions.shutdown()
    state.datasets.shutdown()
    alias_reads.close_workers()  # the registry's alias worker process ends with the app
    state.inference.shutdown(wait=False, cancel_futures=True)
    state.models.close()
    telemetry.flush()  # the last requests' spans leave before the process does


def _body_limits(state: ServingState) -> Callable[[str], int]:
    size, many = state.settings.max_image_bytes, state.options.max_zero_shot_images
    return lambda path: route_body_limit(path, size, many)


async def _serving_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServingError)
    state_of(request).metrics.error(exc.kind)
    if exc.status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc)
    return JSONResponse({"detail": exc.message, "kind": exc.kind.value}, status_code=exc.status)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    state_of(request).metrics.error(ErrorKind.INVALID_REQUEST)
    return await request_validation_exception_handler(request, exc)
