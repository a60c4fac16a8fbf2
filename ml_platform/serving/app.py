"""The FastAPI app: `create_app(settings)` wires routers, auth, errors and metrics.

Every app has its own state (model caches, Prometheus registry), so several can live in one
process (tests); `run_server` serves one with uvicorn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_platform.serving.auth import require_token
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.options import ServeOptions
from ml_platform.serving.routers import analyze, collections, health, pets, zero_shot
from ml_platform.serving.routers import predict as predict_router
from ml_platform.serving.schemas import AnalyzeRequest, ZeroShotRequest
from ml_platform.serving.state import build_state, state_of
from ml_platform.serving.vision_models import DetectorFactory, EmbedderFactory
from ml_platform.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    options: ServeOptions | None = None,
    *,
    embedder_factory: EmbedderFactory | None = None,
    detector_factory: DetectorFactory | None = None,
) -> FastAPI:
    """The serving app. The factories replace `get_embedder`/`get_detector` (tests, tuning)."""
    app = FastAPI(
        title="ml_platform serving",
        version="1",
        description="Collection classifiers, embeddings, detections and zero-shot labels.",
        lifespan=_lifespan,
    )
    app.state.serving = build_state(
        settings, options or ServeOptions(), embedder_factory, detector_factory
    )
    guarded = [Depends(require_token)]
    app.include_router(analyze.router, dependencies=guarded)
    app.include_router(zero_shot.router, dependencies=guarded)
    app.include_router(collections.router, dependencies=guarded)
    app.include_router(pets.router, dependencies=guarded)
    app.include_router(predict_router.router, dependencies=guarded)
    app.include_router(health.router)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_ObserveLatency, metrics=app.state.serving.metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def run_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: ServeOptions | None = None,
) -> None:
    """Serve `create_app(settings)` with uvicorn until interrupted."""
    import uvicorn

    log.info("serving on http://%s:%s (registry %s)", host, port, settings.tracking_uri)
    uvicorn.run(create_app(settings, options), host=host, port=port, log_level="info")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.serving.inference.shutdown(wait=False, cancel_futures=True)


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


class _ObserveLatency:
    """Pure ASGI middleware: HTTP latency by route template and status (no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.http_seconds.labels(
                method=scope["method"], route=route, status=str(status)
            ).observe(time.perf_counter() - start)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies the routes parse themselves (JSON or form)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (AnalyzeRequest, ZeroShotRequest):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
    return app.openapi_schema
