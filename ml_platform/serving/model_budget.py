"""One memory budget for every model a server loads on demand (champions, dataset models,
embedders, zero-shot models).

Each cache `admit`s what it loads with its estimated size (`model_size`) and a callback that
unloads it, and `touch`es it on every use. Past `limit_bytes` the least recently used models
are unloaded (never the one just admitted: a model bigger than the whole budget is served
alone); a model idle for `ttl_s` is unloaded by the next `sweep` (every use sweeps, and a
background thread sweeps while the server is idle). An unloaded model is loaded again by its
next request. Unload callbacks run outside the budget's lock, so a cache may call the budget
while holding its own locks. After unloads, the background thread hands the freed memory back
to the system (`memory_release`, within `RELEASE_EVERY_S`). Uses are counted per model across
unloads: the preload warms the most used first (`ranked`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ml_platform.serving.memory_release import release_freed_memory
from ml_platform.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)
RELEASE_EVERY_S = 5.0  # the background thread's tick: freed memory goes back at most this late
Unload = Callable[[], None]
SlotKey = tuple[str, str]  # (cache kind, model key)


class Unloaded(StrEnum):
    """Why a model was unloaded (the `reason` label of the evictions counter)."""

    BUDGET = "budget"
    IDLE = "idle"


@dataclass
class _Slot:
    nbytes: int
    used_at: float
    unload: Unload


@dataclass(frozen=True)
class LoadedModel:
    cache: str
    key: str
    nbytes: int
    idle_s: float


class ModelBudget:
    """Loaded models in least-recently-used order; thread-safe."""

    def __init__(
        self,
        limit_bytes: int,
        ttl_s: float,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit_bytes = limit_bytes
        self.ttl_s = ttl_s
        self._metrics = metrics
        self.clock = clock
        self._slots: OrderedDict[SlotKey, _Slot] = OrderedDict()
        self._bytes: Counter[str] = Counter()  # by cache kind, kept with `_slots`
        self._counts: Counter[str] = Counter()
        self.uses: Counter[SlotKey] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._freed = threading.Event()  # something was unloaded since the last release
        self._thread: threading.Thread | None = None
        metrics.model_memory_budget.set(limit_bytes)

    def admit(self, cache: str, key: str, nbytes: int, unload: Unload) -> None:
        """Account a freshly loaded model; unloads the least recently used past the limit."""
        with self._lock:
            self._pop((cache, key))
            self._slots[(cache, key)] = _Slot(nbytes, self.clock(), unload)
            self._bytes[cache] += nbytes
            self._counts[cache] += 1
            self.uses[(cache, key)] += 1
            victims = self._over_budget()
        self._publish()
        if nbytes > self.limit_bytes:
            log.warning("%s %r alone (%d MB) exceeds the model memory budget (%d MB)",
                        cache, key, nbytes >> 20, self.limit_bytes >> 20)  # fmt: skip
        self._unload(victims, Unloaded.BUDGET)

    def touch(self, cache: str, key: str) -> None:
        """A use of a loaded model: it becomes the most recently used; idle ones expire."""
        with self._lock:
            slot = self._slots.get((cache, key))
            if slot is not None:
                slot.used_at = self.clock()
                self._slots.move_to_end((cache, key))
            self.uses[(cache, key)] += 1
            expired = self._expired()
        self._unload(expired, Unloaded.IDLE)

    def forget(self, cache: str, key: str) -> None:
        """The cache dropped the model itself (no champion any more): stop counting it."""
        with self._lock:
            self._pop((cache, key))
        self._publish()

    def sweep(self) -> None:
        """Unload every model idle for longer than the TTL."""
        with self._lock:
            expired = self._expired()
        self._unload(expired, Unloaded.IDLE)

    def fits(self, nbytes: int) -> bool:
        return self.total_bytes() + nbytes <= self.limit_bytes

    def total_bytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def loaded(self) -> list[LoadedModel]:
        """Every loaded model, least recently used first."""
        now = self.clock()
        with self._lock:
            return [LoadedModel(cache, key, slot.nbytes, now - slot.used_at)
                    for (cache, key), slot in self._slots.items()]  # fmt: skip

    def ranked(self, cache: str, keys: list[str]) -> list[str]:
        """`keys` by uses so far, most used first (ties keep their order)."""
        return sorted(keys, key=lambda key: -self.uses[(cache, key)])

    def start(self) -> None:
        """Sweep (with a TTL) and release freed memory in the background while the server
        runs."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._sweeper, name="model-ttl", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> bool:
        """Hand what unloads freed back to the system; False when nothing was unloaded since
        the last release (or the C library cannot)."""
        if not self._freed.is_set():
            return False
        self._freed.clear()
        return release_freed_memory()

    def _sweeper(self) -> None:
        every = min(self.ttl_s / 2, RELEASE_EVERY_S) if self.ttl_s > 0 else RELEASE_EVERY_S
        while not self._stop.wait(every):
            if self.ttl_s > 0:
                self.sweep()
            self.release()

    def _over_budget(self) -> list[tuple[SlotKey, _Slot]]:
        victims = []
        while sum(self._bytes.values()) > self.limit_bytes and len(self._slots) > 1:
            name = next(iter(self._slots))
            victims.append((name, self._pop(name)))
        return victims

    def _expired(self) -> list[tuple[SlotKey, _Slot]]:
        if self.ttl_s <= 0:
            return []
        deadline = self.clock() - self.ttl_s
        expired = []
        while self._slots:
            name, slot = next(iter(self._slots.items()))
            if slot.used_at > deadline:
                break
            expired.append((name, self._pop(name)))
        return expired

    def _pop(self, name: SlotKey) -> _Slot:
        """Remove a slot (under the lock), keeping the totals; a dummy when absent."""
        slot = self._slots.pop(name, None)
        if slot is None:
            return _Slot(0, 0.0, _nothing)
        self._bytes[name[0]] -= slot.nbytes
        self._counts[name[0]] -= 1
        return slot

    def _unload(self, victims: list[tuple[SlotKey, _Slot]], reason: Unloaded) -> None:
        if not victims:
            return
        for (cache, key), slot in victims:
            slot.unload()
            self._metrics.model_evictions.labels(cache=cache, reason=reason.value).inc()
            log.info("unloaded %s %r (%d KB, %s)", cache, key, slot.nbytes >> 10, reason.value)
        self._freed.set()
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            sizes, counts = dict(self._bytes), dict(self._counts)
        for cache, nbytes in sizes.items():
            self._metrics.model_memory.labels(cache=cache).set(nbytes)
            self._metrics.models_loaded.labels(cache=cache).set(counts[cache])


def _nothing() -> None:
    """The unload of a model that was not loaded."""
