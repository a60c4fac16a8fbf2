"""Dynamic batching: concurrent requests that need the same embedder share forward passes.

Each request preprocesses its own image on its own inference thread, then queues the pixels.
One worker thread per embedder takes what is queued (up to ``max_batch``), waits at most
``max_wait_s`` for more while the batch is not full, runs one forward pass on the stacked
batch and hands every request its row. While a pass runs, new requests queue up, so under
load the batches fill by themselves and the wait rarely matters.

An embedder whose vectors depend on the other images of its forward pass (dynamic INT8:
one activation scale per batch; ``batch_invariant = False``) still gets one queue and one
worker, but each request's image runs alone, so the same image always gets the same answer
whatever else is being served.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform import telemetry
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.vision.embedders import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingConfig:
    """``max_batch`` <= 1 turns batching off (one forward pass per request)."""

    max_batch: int = 16
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1


@dataclass
class _Request:
    pixels: np.ndarray
    result: Future[NDArray[np.float32]] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)
    trace: telemetry.SpanContext | None = field(default_factory=telemetry.current)
    batch_size: int = 0


class DynamicBatcher:
    """Batches ``embed`` calls on one embedder; ``lock`` is held around each forward pass."""

    def __init__(
        self,
        embedder: Embedder,
        lock: threading.Lock,
        config: BatchingConfig,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.embedder = embedder
        self._lock = lock
        self._config = config
        self._metrics = metrics
        self._stopped = False
        self._put_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._worker = threading.Thread(
            target=self._serve, name=f"embed-batch-{embedder.name}", daemon=True
        )
        self._worker.start()
        self.batch_sizes: list[int] = []  # recent batch sizes, for metrics and tests

    def embed(self, image: Image.Image) -> NDArray[np.float32]:
        """One image's embedding, float32 ``[dim]``, computed in a shared forward pass. The
        current span (the request's `embedding`) gets the preprocessing time, the wait for
        the pass and the batch size as attributes; the pass is a `forward` span in it."""
        start = time.perf_counter()
        pixels = self.embedder.preprocess([image])
        request = _Request(pixels)
        with self._put_lock:  # never queued behind the stop marker, where nobody reads
            queued = not self._stopped
            if queued:
                self._queue.put(request)
        if queued:
            vector = request.result.result()
            telemetry.set_attributes({
                "embedder": self.embedder.name, "batch_size": request.batch_size,
                "preprocess_ms": round((request.queued_at - start) * 1000.0, 3),
                "batch_wait_ms": round((time.perf_counter() - request.queued_at) * 1000.0, 3),
            })  # fmt: skip
            return vector
        with self._lock:  # stopped (the embedder was unloaded): this image runs alone
            vectors = self.embedder.embed_preprocessed(request.pixels)
        return np.asarray(vectors[0], dtype=np.float32)

    def stop(self) -> None:
        """Let the worker end after the requests already queued; later ones run alone."""
        with self._put_lock:
            if not self._stopped:
                self._stopped = True
                self._queue.put(None)

    def close(self) -> None:
        """Stop the worker after the requests already queued, and wait for it."""
        self.stop()
        self._worker.join(timeout=10)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            self._run(batch)
            if stop:
                return

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        batch = [first]
        deadline = time.monotonic() + self._config.max_wait_ms / 1000.0
        while len(batch) < self._config.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _forward(self, batch: list[_Request], pixels: np.ndarray) -> np.ndarray:
        if len(batch) == 1 or getattr(self.embedder, "batch_invariant", True):
            return self.embedder.embed_preprocessed(pixels)
        return np.concatenate([self.embedder.embed_preprocessed(r.pixels) for r in batch])

    def _observe(self, batch: list[_Request], started: float) -> None:
        if self._metrics is None:
            return
        name = self.embedder.name
        self._metrics.batch_size.labels(embedder=name).observe(len(batch))
        for request in batch:
            self._metrics.queue_wait_seconds.labels(embedder=name).observe(
                started - request.queued_at
            )

    def _run(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        try:
            pixels = (
                np.concatenate([r.pixels for r in batch]) if len(batch) > 1 else batch[0].pixels
            )
            # a child of the first request's span, linked to every request it served
            links = [r.trace for r in batch if r.trace is not None]
            attributes: dict[str, telemetry.AttributeValue] = {
                "batch_size": len(batch),
                "embedder": self.embedder.name,
            }
            forward = telemetry.span("forward", attributes, links=links, parent=batch[0].trace)
            with self._lock, forward:
                vectors = self._forward(batch, pixels)
        except Exception as exc:  # every waiting request gets the failure, none hangs
            log.exception("batched forward pass of %d images failed", len(batch))
            for request in batch:
                request.result.set_exception(exc)
            return
        self.batch_sizes = [*self.batch_sizes[-255:], len(batch)]
        self._observe(batch, started)
        for row, request in enumerate(batch):
            request.batch_size = len(batch)
            request.result.set_result(np.asarray(vectors[row], dtype=np.float32))
