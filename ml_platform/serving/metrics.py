"""Prometheus metrics of one app, in the app's own CollectorRegistry (never the global one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from ml_platform import telemetry

PREFIX = "ml_platform_serving"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Stage(StrEnum):
    """Parts of a request whose time the response reports in `timings_ms`."""

    FETCH = "fetch"
    DECODE = "decode"
    DETECTION = "detection"
    EMBEDDING = "embedding"
    CLASSIFICATION = "classification"


class CacheKind(StrEnum):
    """Caches whose hits and loads are counted."""

    CLASSIFIER = "classifier"
    EMBEDDER = "embedder"
    DETECTOR = "detector"
    ZERO_SHOT = "zero_shot"


class ServingMetrics:
    """Latency per operation and stage, errors by kind, model cache hits and loads."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_seconds = self._histogram(
            "http_request_seconds", "HTTP request latency by route and status.",
            ["method", "route", "status"],
        )  # fmt: skip
        self.operation_seconds = self._histogram(
            "operation_seconds",
            "Latency of one operation (classify, embed, detect, zero_shot), shared work included.",
            ["operation"],
        )
        self.stage_seconds = self._histogram(
            "stage_seconds",
            "Time spent per request in each stage (decode, detection, embedding, ...).",
            ["stage"],
        )
        self.errors = self._counter("errors", "Errors by kind.", ["kind"])
        self.cache_hits = self._counter(
            "model_cache_hits", "Model lookups answered by an already loaded model.", ["cache"]
        )
        self.model_loads = self._counter(
            "model_loads", "Models loaded (first use, or a new champion version).", ["cache"]
        )
        self._model_gauges()
        self.batch_size = self._histogram(
            "batch_size", "Images per batched embedding forward pass.", ["embedder"],
            BATCH_BUCKETS,
        )  # fmt: skip
        self.queue_wait_seconds = self._histogram(
            "batch_queue_wait_seconds",
            "Time a request's image waited in the batcher's queue before its forward pass.",
            ["embedder"],
        )

    def _model_gauges(self) -> None:
        self.models_loaded = self._gauge(
            "models_loaded", "Models loaded now, by cache (within the model memory budget).",
            ["cache"],
        )  # fmt: skip
        self.model_memory = self._gauge(
            "model_memory_bytes",
            "Estimated memory of the loaded models, by cache (serving.model_size).",
            ["cache"],
        )
        self.model_memory_budget = self._gauge(
            "model_memory_budget_bytes",
            "The model memory budget (ML_PLATFORM_SERVE_MODEL_MEMORY_MB).",
        )
        self.model_evictions = self._counter(
            "model_unloads",
            "Models unloaded: past the memory budget (least recently used) or idle past the TTL.",
            ["cache", "reason"],
        )

    def _histogram(
        self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, labels, namespace=PREFIX, buckets=buckets,
                         registry=self.registry)  # fmt: skip

    def _counter(self, name: str, doc: str, labels: list[str]) -> Counter:
        return Counter(name, doc, labels, namespace=PREFIX, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] | list[str] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=PREFIX, registry=self.registry)

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def hit(self, cache: CacheKind) -> None:
        self.cache_hits.labels(cache=cache.value).inc()

    def loaded(self, cache: CacheKind) -> None:
        self.model_loads.labels(cache=cache.value).inc()

    @contextmanager
    def time_operation(self, operation: str, *, traced: bool = True) -> Iterator[None]:
        """Observe the block's duration; also a span unless `traced=False` (the analyze
        operations: one span around them all, `operations.run_operations`)."""
        start = time.perf_counter()
        try:
            with telemetry.span(operation.replace("_", "-")) if traced else nullcontext():
                yield
        finally:
            self.operation_seconds.labels(operation=operation).observe(time.perf_counter() - start)

    def observe_stages(self, seconds: dict[Stage, float]) -> None:
        for stage, value in seconds.items():
            self.stage_seconds.labels(stage=stage.value).observe(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
