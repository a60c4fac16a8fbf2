"""A cache of registry champions, for any kind of registered model (see `model_cache`).

`RegistryCache` answers from memory; once the last alias check is older than
`refresh_interval_s`, the request that notices it schedules a re-check on the cache's
background thread and is answered at once. A re-check (which asks the `ChampionSource` which
version is champion and loads it when it moved: promotion or rollback) never blocks a
request. When the registry cannot be reached, a loaded champion keeps being served and
`problems()` reports the degradation for `/readyz`. A key never loaded is loaded by its first
request; when that fails (registry unreachable, model broken) the failure is remembered with
a backoff, so the next requests get the 503 at once.

With a `ModelBudget`, every load is accounted (its `model_size.reachable_bytes`) and may be
unloaded again (least recently used past the budget, or idle past the TTL); the champion's
registry entry is kept, so reloading it within `refresh_interval_s` of the last check asks
the registry nothing. `seed` fills those entries for many keys at once (the start-up index).
A key unloaded (or never loaded) is loaded from its last registry answer however old, and
re-checked behind the request when that answer is older than `refresh_interval_s`, exactly
as a loaded one is: a reload after an eviction is one model load, no registry call.

Re-checks are batched (`rechecks.DueKeys`): one bulk read of the champion aliases per batch
(`ChampionSource.champion_versions`, in the alias worker process: `alias_reads`); only a
champion that moved is then asked for in full (its tags), one by one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.champion_source import REGISTRY_ERRORS, ChampionSource
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.lazy import forget
from ml_platform.serving.loaded_champions import Entry, K, LoadedChampions, V
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.rechecks import WINDOW_SHARE, DueKeys

__all__ = ["REGISTRY_ERRORS", "ChampionSource", "RegistryCache"]

log = logging.getLogger(__name__)


class RegistryCache(LoadedChampions[K, V]):
    """Loaded champions by key; thread-safe, one loader per key at a time."""

    def __init__(
        self,
        source: ChampionSource[K, V],
        refresh_interval_s: float,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
        budget: ModelBudget | None = None,
    ) -> None:
        super().__init__(metrics, clock, budget)
        self.source: ChampionSource[K, V] = source
        self.refresh_interval_s = refresh_interval_s
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()
        self.failures = FailureMemory(clock=clock)
        self._rechecks: DueKeys[K] = DueKeys(self._recheck, refresh_interval_s * WINDOW_SHARE)

    def get(self, key: K) -> V:
        """The champion to serve now (see the module docstring for the refresh rule)."""
        entry = self._entries.get(key)
        if entry is not None:
            if self._due(entry):
                self._schedule_recheck(key)
            self._metrics.hit(CacheKind.CLASSIFIER)
            if self.budget is not None:
                self.budget.touch(self.budget_name, str(key))
            return entry.model
        failure_key = str(key)
        self.failures.check(failure_key)
        with self._lock_for(key):
            entry = self._entries.get(key)
            if entry is not None:  # loaded while we waited
                self._metrics.hit(CacheKind.CLASSIFIER)
                return entry.model
            self.failures.check(failure_key)
            model = self._first_load(key, failure_key)
        entry = self._entries.get(key)
        if entry is not None and self._due(entry):  # loaded from an answer older than the interval
            self._schedule_recheck(key)
        return model

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the scheduled re-checks (tests, shutdown)."""
        self._rechecks.drain(timeout_s)

    def shutdown(self) -> None:
        self._rechecks.shutdown()

    def _schedule_recheck(self, key: K) -> None:
        self._rechecks.add(key)

    def _recheck(self, keys: list[K]) -> None:
        now = self._clock()
        try:
            versions = self.source.champion_versions(keys)
        except REGISTRY_ERRORS as exc:
            self._registry_failed(f"{len(keys)} champions", exc)
            for key in keys:
                with self._lock_for(key):
                    self._unreachable(key, exc, now)
            return
        for key, version in zip(keys, versions, strict=True):
            with self._lock_for(key):
                try:
                    self._settle(key, self._answer(key, version), now)
                except ServingError as exc:  # no champion any more
                    log.warning("re-check of %s: %s", self.source.describe(key), exc.message)
                except REGISTRY_ERRORS as exc:
                    self._registry_failed(self.source.describe(key), exc)
                    self._unreachable(key, exc, now)

    def _answer(self, key: K, version: str | None) -> ModelVersionInfo | None:
        """`key`'s champion, named `version` by the bulk read: the known answer when the
        alias did not move, else the registry's answer in full (promotion, rollback)."""
        if version is None:
            return None
        known = self._infos.get(key)
        if known is not None and known[0].version == version:
            return known[0]
        return self.source.champion(key)

    def _registry_failed(self, what: str, exc: BaseException) -> None:
        log.warning("registry check for %s failed: %s", what, exc)
        self._metrics.error(ErrorKind.REGISTRY_UNAVAILABLE)

    def _first_load(self, key: K, failure_key: str) -> V:
        try:
            model = self._refresh(key)
        except ServingError as exc:
            if exc.kind in (ErrorKind.REGISTRY_UNAVAILABLE, ErrorKind.MODEL_UNAVAILABLE):
                forget(exc)  # a half-loaded model must not live as long as the memory of it
                raise self.failures.record(failure_key, exc.fresh()).error.fresh() from None
            raise
        self.failures.clear(failure_key)
        return model

    def _due(self, entry: Entry[V]) -> bool:
        """Older than the interval less the re-check batch's window (`rechecks`)."""
        return self._clock() - entry.checked_at >= self.refresh_interval_s * (1 - WINDOW_SHARE)

    def _lock_for(self, key: K) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _refresh(self, key: K) -> V:
        """The first load of `key`: from its last answer, however old (re-checked behind the
        request when due, as a loaded one is), else from the registry's answer now."""
        known = self._infos.get(key)
        if known is not None:
            return self._load_new(key, known[0], None, self._clock())
        now = self._clock()
        try:
            info = self.source.champion(key)
        except REGISTRY_ERRORS as exc:
            self._registry_failed(self.source.describe(key), exc)
            raise ServingError(
                ErrorKind.REGISTRY_UNAVAILABLE,
                f"the model registry is unreachable and {self.source.describe(key)}'s "
                f"model is not loaded yet: {exc}",
            ) from exc
        model = self._settle(key, info, now, load_unloaded=True)
        assert model is not None  # loaded, or raised
        return model
