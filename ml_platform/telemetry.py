"""Traces: OpenTelemetry, configured by the standard `OTEL_*` environment variables.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, unless
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`; spans then go over OTLP/HTTP
(protobuf) in batches. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the process,
`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` sample (the SDK reads them all). Off, `span`
returns one shared no-op context manager: no tracer, no allocation per call.

The environment is read on the first span, not at import; `reset()` flushes and forgets the
configuration (tests set `OTEL_*` and reset). The provider is this module's own, never the
global one, so MLflow's tracing and ours do not fight over it. `TraceIds` puts the current
trace and span ids on every log record (`%(otel_trace_id)s`, `%(otel_span_id)s`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Tracer

__all__ = ["SpanContext", "SpanKind", "current", "flush", "record_span", "reset", "span", "tracer"]

AttributeValue = str | bool | int | float
INSTRUMENTATION = "ml_platform"
_OFF: AbstractContextManager[None] = contextlib.nullcontext()
_lock = threading.Lock()
_configured = False
_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))  # fmt: skip


def tracer() -> Tracer | None:
    """The tracer, or None when tracing is off (configured from the environment once)."""
    if not _configured:
        _configure()
    return _tracer


def _configure() -> None:
    global _configured, _provider, _tracer
    with _lock:
        if _configured:
            return
        if enabled():
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider = TracerProvider(resource=Resource.create())
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            _tracer = _provider.get_tracer(INSTRUMENTATION)
            logging.getLogger(__name__).info("tracing on: OTLP/HTTP to %s", _endpoint())
        _configured = True


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/") + "/v1/traces"
    )


def reset() -> None:
    """Flush and shut down the provider; the next span reads the environment again."""
    global _configured, _provider, _tracer
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _configured, _provider, _tracer = False, None, None


def flush(timeout_ms: int = 10_000) -> None:
    """Export the spans ended so far (a CLI command before it exits)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def span(
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    links: Sequence[SpanContext] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    parent: SpanContext | None = None,
    start_time_ns: int | None = None,
) -> AbstractContextManager[Span | None]:
    """A span around a block, child of the current one (or of `parent`, a span of another
    thread, or of the remote `context`); a shared no-op when tracing is off."""
    active = tracer()
    if active is None:
        return _OFF
    if parent is not None:
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    return active.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=_clean(attributes),
        links=[Link(c) for c in links if c.is_valid],
        start_time=start_time_ns,
    )


def record_span(
    name: str,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, AttributeValue | None] | None = None,
) -> AbstractContextManager[Span | None]:
    """A span for something that already happened (a Dagster step from its events): the
    block's children nest in it, and it ends at `end_ns`."""
    active = tracer()
    if active is None:
        return _OFF
    return _ended_at(active.start_span(name, attributes=_clean(attributes),
                                       start_time=start_ns), end_ns)  # fmt: skip


@contextlib.contextmanager
def _ended_at(started: Span, end_ns: int) -> Iterator[Span | None]:
    with trace.use_span(started, end_on_exit=False):
        yield started
    started.end(end_time=end_ns)


def current() -> SpanContext | None:
    """The current span's context (to link from another thread), or None when off."""
    if tracer() is None:
        return None
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def set_attributes(attributes: Mapping[str, AttributeValue | None]) -> None:
    """Add attributes to the current span (nothing when off)."""
    if tracer() is not None:
        trace.get_current_span().set_attributes(_clean(attributes))


def incoming(headers: Mapping[str, str]) -> Context | None:
    """The caller's trace context from `traceparent` headers (W3C), or None."""
    return extract(headers) if "traceparent" in headers else None


def _clean(attributes: Mapping[str, AttributeValue | None] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


class TraceIds(logging.Filter):
    """Adds `otel_trace_id` and `otel_span_id` (hex, `-` outside a span) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        valid = context.is_valid
        record.otel_trace_id = format(context.trace_id, "032x") if valid else "-"
        record.otel_span_id = format(context.span_id, "016x") if valid else "-"
        return True


def install_log_ids(handler: logging.Handler | None = None) -> None:
    """Put `TraceIds` on `handler` (default: every root handler), once."""
    handlers = [handler] if handler is not None else logging.getLogger().handlers
    for each in handlers:
        if not any(isinstance(f, TraceIds) for f in each.filters):
            each.addFilter(TraceIds())
