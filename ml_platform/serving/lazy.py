"""Heavy models loaded once, lazily, under a lock; each with a lock that serialises its use.

A failed load is remembered (`backoff.FailureMemory`): requests get the same error at once
until the retry time, instead of each retrying the load.

With a `ModelBudget`, each load is accounted at its estimated size (`model_size`), and may
be unloaded again; `on_unload(key)` then lets the owner drop what it built around the
model (a batcher).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ml_platform import telemetry
from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_size import reachable_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a failing loader may raise: missing weights or files, bad configuration, torch errors.
LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, LookupError)


@dataclass
class Loaded(Generic[T]):
    """A loaded model and the lock to hold while running it."""

    model: T
    lock: threading.Lock = field(default_factory=threading.Lock)


class LazyModels(Generic[T]):
    """Models of one kind by key: the first `get` loads (others wait), later ones hit."""

    def __init__(
        self,
        kind: CacheKind,
        metrics: ServingMetrics,
        load_errors: tuple[type[BaseException], ...] = LOAD_ERRORS,
        budget: ModelBudget | None = None,
        on_unload: Callable[[str], None] | None = None,
    ) -> None:
        self.kind = kind
        self.budget = budget
        self._on_unload = on_unload
        self._metrics = metrics
        self._load_errors = load_errors
        self._loaded: dict[str, Loaded[T]] = {}
        self.failures = FailureMemory()
        self._guard = threading.Lock()

    def get(self, key: str, load: Callable[[], T]) -> Loaded[T]:
        """The model `key`, loaded with `load()` on first use; 503 when loading fails (the
        same 503 at once while the failure's backoff lasts)."""
        loaded = self._loaded.get(key)
        if loaded is None:
            self.failures.check(key)
            with self._guard:  # loads are rare: one at a time keeps memory and CPU predictable
                self.failures.check(key)  # it failed while we waited
                loaded = self._loaded.get(key)
                if loaded is None:
                    return self._admit(key, load)
        self._metrics.hit(self.kind)
        if self.budget is not None:
            self.budget.touch(self.kind.value, key)
        return loaded

    def _admit(self, key: str, load: Callable[[], T]) -> Loaded[T]:
        loaded = Loaded(self._load(key, load))
        self._loaded[key] = loaded
        if self.budget is not None:
            nbytes = reachable_bytes(loaded.model)
            self.budget.admit(self.kind.value, key, nbytes, lambda: self._unload(key))
        return loaded

    def _unload(self, key: str) -> None:
        self._loaded.pop(key, None)
        if self._on_unload is not None:
            self._on_unload(key)

    def loaded_keys(self) -> list[str]:
        return sorted(self._loaded)

    def loaded(self) -> list[str]:
        """`<kind> '<key>'` of every loaded model (the names `failed` uses)."""
        return [f"{self.kind.value} {key!r}" for key in sorted(self._loaded)]

    def problems(self) -> list[str]:
        """Models whose last load attempt failed, with the reason."""
        return [f"{name} failed to load: {reason}" for name, reason in self.failed().items()]

    def failed(self) -> dict[str, str]:
        """`<kind> '<key>'` -> why its last load failed."""
        return {f"{self.kind.value} {key!r}": f.error.message for key, f in self.failures.items()}

    def _load(self, key: str, load: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            with telemetry.span("model.load", {"model.cache": self.kind.value, "model.key": key}):
                model = load()
        except self._load_errors as exc:
            self._metrics.error(ErrorKind.MODEL_UNAVAILABLE)
            message = f"{self.kind.value} {key!r} cannot be loaded: {exc}"
            forget(exc)  # its frames hold what the loader built before it failed
            failure = self.failures.record(key, ServingError(ErrorKind.MODEL_UNAVAILABLE, message))
            log.error("%s", failure.error.message)
            raise failure.error.fresh() from None
        self.failures.clear(key)
        self._metrics.loaded(self.kind)
        log.info("loaded %s %r in %.2f s", self.kind.value, key, time.perf_counter() - start)
        return model


def forget(exc: BaseException) -> None:
    """Drop the local variables of every frame in `exc`'s tracebacks (and its causes'): a
    half-built model referenced from a loader's frame would otherwise live as long as the
    error does, and a remembered error lives until the next attempt."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
