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

Re-checks are batched: the keys that fall due while one batch is read wait for the next, and
a batch is one bulk read of the champion aliases (`ChampionSource.champion_versions`: one
search per 100 keys, or one alias read per key for a few), not two registry calls per key;
only a champion that moved is then asked for in full (its tags), one by one. After an
eviction at 10,000 champions most answers are old, and per-key re-checks (~40 ms of the
registry client's Python each, on a thread that shares the interpreter with the requests)
made a reload slow, not the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import requests
from mlflow.exceptions import MlflowException

from ml_platform import telemetry
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.lazy import forget
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_size import reachable_bytes
from ml_platform.serving.rechecks import WINDOW_SHARE, DueKeys

log = logging.getLogger(__name__)

REGISTRY_ERRORS: tuple[type[BaseException], ...] = (
    MlflowException,
    OSError,
    requests.RequestException,
)


K = TypeVar("K", int, str)


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


V = TypeVar("V", bound=Versioned)
K_in = TypeVar("K_in", int, str, contravariant=True)
V_out = TypeVar("V_out", bound=Versioned, covariant=True)


class ChampionSource(Protocol[K_in, V_out]):
    """One kind of registered model, as the cache needs it."""

    def describe(self, key: K_in) -> str: ...  # "collection 3", "dataset 'pets'"

    def champion(self, key: K_in) -> ModelVersionInfo | None: ...  # raises REGISTRY_ERRORS

    # the version each key's champion alias names, in `keys` order, read in bulk (None: no
    # champion; raises REGISTRY_ERRORS)
    def champion_versions(self, keys: Sequence[K_in]) -> list[str | None]: ...

    def missing(self, key: K_in) -> ServingError: ...  # no registered model or no champion

    def load(self, key: K_in, info: ModelVersionInfo) -> V_out: ...


@dataclass
class _Entry(Generic[V]):
    model: V
    checked_at: float
    stale_reason: str | None = None


class RegistryCache(Generic[K, V]):
    """Loaded champions by key; thread-safe, one loader per key at a time."""

    budget_name = "classifier"  # the cache's name in the model budget

    def __init__(
        self,
        source: ChampionSource[K, V],
        refresh_interval_s: float,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
        budget: ModelBudget | None = None,
    ) -> None:
        self.source: ChampionSource[K, V] = source
        self.budget = budget
        self._infos: dict[K, tuple[ModelVersionInfo, float]] = {}  # last registry answers
        self.refresh_interval_s = refresh_interval_s
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}
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

    def seed(self, infos: dict[K, ModelVersionInfo]) -> None:
        """Registry entries read in bulk (the start-up index), as fresh as a check now."""
        now = self._clock()
        self._infos.update({key: (info, now) for key, info in infos.items()})

    def known_keys(self) -> list[K]:
        """Keys whose champion the registry named at the last check (loaded or not)."""
        return sorted(self._infos)

    def known_tags(self, key: K) -> dict[str, str]:
        """The tags of `key`'s champion at the last check ({} when unknown)."""
        known = self._infos.get(key)
        return dict(known[0].tags) if known is not None else {}

    def loaded_versions(self) -> dict[K, str]:
        return {key: entry.model.version for key, entry in sorted(self._entries.items())}

    def problems(self) -> list[str]:
        """Why some served champions may be out of date (empty when all are current)."""
        return [f"{name}: {reason}" for name, reason in self.stale().items()]

    def stale(self) -> dict[str, str]:
        """Served champions that may be out of date: name -> why."""
        return {
            self.source.describe(key): f"serving version {entry.model.version}, "
            f"{entry.stale_reason}"
            for key, entry in sorted(self._entries.items())
            if entry.stale_reason is not None
        }

    def _due(self, entry: _Entry[V]) -> bool:
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

    def _settle(
        self, key: K, info: ModelVersionInfo | None, now: float, load_unloaded: bool = False
    ) -> V | None:
        """The registry answered `info` for `key` at `now`: forget it (no champion: the
        `missing` error), keep its loaded model (same version), or load the new version
        (promotion, rollback); None when `key` is not loaded and not `load_unloaded`."""
        entry = self._entries.get(key)
        if info is None:
            self._entries.pop(key, None)
            self._infos.pop(key, None)
            if self.budget is not None:
                self.budget.forget(self.budget_name, str(key))
            raise self.source.missing(key)
        self._infos[key] = (info, now)
        if entry is not None and entry.model.version == info.version:
            self._entries[key] = _Entry(entry.model, now)
            return entry.model
        if entry is None and not load_unloaded:
            return None  # unloaded: its next request loads this answer
        return self._load_new(key, info, entry, now)

    def _unreachable(self, key: K, exc: BaseException, now: float) -> None:
        """Keep serving `key`'s loaded model, marked stale until the registry answers."""
        entry = self._entries.get(key)
        if entry is not None:
            reason = f"registry unreachable at the last check: {exc}"
            self._entries[key] = _Entry(entry.model, now, reason)

    def _load_new(self, key: K, info: ModelVersionInfo, entry: _Entry[V] | None, now: float) -> V:
        try:
            model = self._load(key, info)
        except ServingError as exc:
            if entry is None:
                self._infos.pop(key, None)  # the next try asks the registry again
                raise
            log.error("keeping version %s of %s: %s", entry.model.version, info.name, exc)
            reason = f"champion version {info.version} failed to load: {exc.message}"
            self._entries[key] = _Entry(entry.model, now, reason)
            return entry.model
        if entry is not None:
            log.info("%s: champion moved %s -> %s", info.name, entry.model.version, info.version)
        # a load from the last registry answer is as fresh as that answer
        self._entries[key] = _Entry(model, self._infos.get(key, (info, now))[1])
        if self.budget is not None:
            self.budget.admit(self.budget_name, str(key), reachable_bytes(model),
                              lambda: self._unload(key))  # fmt: skip
        return model

    def _unload(self, key: K) -> None:
        self._entries.pop(key, None)

    def _load(self, key: K, info: ModelVersionInfo) -> V:
        start = time.perf_counter()
        uri = f"models:/{info.name}/{info.version}"
        attributes = {"model.name": info.name, "model.version": info.version}
        try:
            with telemetry.span("mlflow.load", attributes):
                model = self.source.load(key, info)
        except Exception as exc:  # any failure to load is reported, never served around
            log.exception("loading %s failed", uri)
            self._metrics.error(ErrorKind.MODEL_UNAVAILABLE)
            raise ServingError(ErrorKind.MODEL_UNAVAILABLE, f"could not load {uri}: {exc}") from exc
        self._metrics.loaded(CacheKind.CLASSIFIER)
        log.info("loaded %s in %.2f s", uri, time.perf_counter() - start)
        return model
