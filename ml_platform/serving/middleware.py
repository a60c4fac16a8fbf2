"""Pure ASGI middleware: latency by route and status, and the last-resort JSON 500.

`CatchAll` answers an exception nothing else handled with a JSON 500 and *returns*, so the
server keeps the keep-alive connection open for the client's next request (Starlette's own
error middleware re-raises, and the server then drops the connection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_platform import telemetry
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)


class HttpMiddleware:
    """A pure ASGI middleware that acts on HTTP requests (`handle`); other scopes (lifespan,
    websockets) pass straight through to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class ObserveLatency(HttpMiddleware):
    """HTTP latency by route template and status (no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class Traced(HttpMiddleware):
    """One server span per HTTP request (`<METHOD> <route template>`, the status as
    `http.response.status_code`), continuing the caller's W3C `traceparent` when it sends one;
    the request's stages nest in it. Nothing at all when tracing is off."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if telemetry.tracer() is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        with telemetry.span(f"{scope['method']}", attributes, kind=telemetry.SpanKind.SERVER,
                            context=telemetry.incoming(headers)) as span:  # fmt: skip

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start" and span is not None:
                    span.set_attribute("http.response.status_code", int(message["status"]))
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                route = str(getattr(scope.get("route"), "path", "unmatched"))
                if span is not None:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)


class CatchAll(HttpMiddleware):
    """Any unhandled exception becomes `{"detail": ..., "kind": "internal"}` with status 500."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            log.info("%s %s: the client went away", scope["method"], scope["path"])
        except Exception as exc:
            log.exception("%s %s failed unexpectedly", scope["method"], scope["path"])
            self.metrics.error(ErrorKind.INTERNAL)
            if started:  # half a response is out: nothing valid can follow on this connection
                raise
            body = {
                "detail": f"internal error ({type(exc).__name__}); the server log has the "
                "traceback. This is a bug: please report it with the request",
                "kind": ErrorKind.INTERNAL.value,
            }
            await JSONResponse(body, status_code=500)(scope, receive, send)


class BodyLimit(HttpMiddleware):
    """A request body limit per route (`limit_for(path)` bytes): 413 with a sentence at once
    when Content-Length declares more, and as soon as a streamed (chunked) body passes it,
    before the rest is read."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        super().__init__(app)
        self.limit_for = limit_for

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(str(scope["path"]))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            error = body_too_large(scope, int(declared), limit)
            response = JSONResponse(
                {"detail": error.message, "kind": error.kind.value}, status_code=error.status
            )
            await response(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise body_too_large(scope, received, limit)
            return message

        await self.app(scope, bounded, send)


def body_too_large(scope: Scope, size: int, limit: int) -> ServingError:
    return ServingError(
        ErrorKind.IMAGE_TOO_LARGE,
        f"the body of {scope['method']} {scope['path']} is over {limit} bytes ({size} so far); "
        "that route's limit follows from max_image_bytes (images as base64, plus room for the "
        "rest of the request): send smaller or fewer images",
    )
