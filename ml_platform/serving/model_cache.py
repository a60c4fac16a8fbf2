"""Champion classifiers: loaded once, re-checked against the registry at most every N seconds.

`ChampionCache.get(collection_id)` answers from memory. Once the last alias check is older
than `refresh_interval_s`, the request that notices it schedules a re-check on the cache's
background thread and is answered with the loaded champion at once: a re-check (which asks
the registry which version `champion` points at and loads it when it moved: promotion or
rollback) never blocks a request. When the registry cannot be reached, a loaded champion
keeps being served and `problems()` reports the degradation for `/readyz`. A collection never
loaded is loaded by its first request; when that fails (registry unreachable, model broken)
the failure is remembered with a backoff, so the next requests get the 503 at once.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from ml_platform.model_registry.artifacts import model_download_uri
from ml_platform.model_registry.lookup import ModelVersionInfo, get_champion
from ml_platform.model_registry.naming import model_name
from ml_platform.serving.backoff import FailureMemory
from ml_platform.serving.champion import Champion, champion_from
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import CacheKind, ServingMetrics

log = logging.getLogger(__name__)

REGISTRY_ERRORS: tuple[type[BaseException], ...] = (
    MlflowException,
    OSError,
    requests.RequestException,
)


@dataclass
class _Entry:
    champion: Champion
    checked_at: float
    stale_reason: str | None = None


class ChampionCache:
    """Loaded champions by collection id; thread-safe, one loader per collection at a time."""

    def __init__(
        self,
        client: MlflowClient,
        refresh_interval_s: float,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
        artifact_root: str | None = None,
    ) -> None:
        self.client = client
        self.artifact_root = artifact_root
        self.refresh_interval_s = refresh_interval_s
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self.failures = FailureMemory(clock=clock)
        self._rechecks: dict[int, Future[None]] = {}
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="champion-check")

    def get(self, collection_id: int) -> Champion:
        """The champion to serve now (see the module docstring for the refresh rule)."""
        entry = self._entries.get(collection_id)
        if entry is not None:
            if self._due(entry):
                self._schedule_recheck(collection_id)
            self._metrics.hit(CacheKind.CLASSIFIER)
            return entry.champion
        key = str(collection_id)
        self.failures.check(key)
        with self._lock_for(collection_id):
            entry = self._entries.get(collection_id)
            if entry is not None:  # loaded while we waited
                self._metrics.hit(CacheKind.CLASSIFIER)
                return entry.champion
            self.failures.check(key)
            return self._first_load(collection_id, key)

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the scheduled re-checks (tests, shutdown)."""
        with self._guard:
            pending = list(self._rechecks.values())
        wait(pending, timeout=timeout_s)

    def shutdown(self) -> None:
        self._background.shutdown(wait=False, cancel_futures=True)

    def _schedule_recheck(self, collection_id: int) -> None:
        with self._guard:
            running = self._rechecks.get(collection_id)
            if running is not None and not running.done():
                return
            try:
                future = self._background.submit(self._recheck, collection_id)
            except RuntimeError:  # shut down: keep serving what is loaded
                return
            self._rechecks[collection_id] = future

    def _recheck(self, collection_id: int) -> None:
        with self._lock_for(collection_id):
            try:
                self._refresh(collection_id)
            except ServingError as exc:  # no champion any more, or the registry said no
                log.warning("re-check of collection %s: %s", collection_id, exc.message)
            except Exception:  # a bug must not kill the background thread silently
                log.exception("re-check of collection %s failed", collection_id)

    def _first_load(self, collection_id: int, key: str) -> Champion:
        try:
            champion = self._refresh(collection_id)
        except ServingError as exc:
            if exc.kind in (ErrorKind.REGISTRY_UNAVAILABLE, ErrorKind.MODEL_UNAVAILABLE):
                raise self.failures.record(key, exc).error from exc
            raise
        self.failures.clear(key)
        return champion

    def loaded_versions(self) -> dict[int, str]:
        return {cid: entry.champion.version for cid, entry in sorted(self._entries.items())}

    def problems(self) -> list[str]:
        """Why some served champions may be out of date (empty when all are current)."""
        return [
            f"collection {cid}: serving version {entry.champion.version}, {entry.stale_reason}"
            for cid, entry in sorted(self._entries.items())
            if entry.stale_reason is not None
        ]

    def _due(self, entry: _Entry) -> bool:
        return self._clock() - entry.checked_at >= self.refresh_interval_s

    def _lock_for(self, collection_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(collection_id, threading.Lock())

    def _refresh(self, collection_id: int) -> Champion:
        entry = self._entries.get(collection_id)
        now = self._clock()
        info = self._lookup(collection_id, entry, now)
        if info is None:
            assert entry is not None
            return entry.champion
        if entry is not None and entry.champion.version == info.version:
            self._entries[collection_id] = _Entry(entry.champion, now)
            return entry.champion
        return self._load_new(collection_id, info, entry, now)

    def _lookup(
        self, collection_id: int, entry: _Entry | None, now: float
    ) -> ModelVersionInfo | None:
        """The registry's champion; None means "keep serving `entry`" (registry unreachable)."""
        try:
            info = get_champion(self.client, collection_id)
        except REGISTRY_ERRORS as exc:
            log.warning("registry check for collection %s failed: %s", collection_id, exc)
            self._metrics.error(ErrorKind.REGISTRY_UNAVAILABLE)
            if entry is None:
                raise ServingError(
                    ErrorKind.REGISTRY_UNAVAILABLE,
                    f"the model registry is unreachable and collection {collection_id}'s "
                    f"classifier is not loaded yet: {exc}",
                ) from exc
            self._entries[collection_id] = _Entry(
                entry.champion, now, f"registry unreachable at the last check: {exc}"
            )
            return None
        if info is None:
            self._entries.pop(collection_id, None)
            raise ServingError(
                ErrorKind.COLLECTION_NOT_FOUND,
                f"collection {collection_id} has no champion classifier "
                f"(registered model {model_name(collection_id)!r} is missing or has no "
                "`champion` alias); train, register and promote one first",
            )
        return info

    def _load_new(
        self, collection_id: int, info: ModelVersionInfo, entry: _Entry | None, now: float
    ) -> Champion:
        try:
            champion = self._load(info)
        except ServingError as exc:
            if entry is None:
                raise
            log.error("keeping version %s of %s: %s", entry.champion.version, info.name, exc)
            reason = f"champion version {info.version} failed to load: {exc.message}"
            self._entries[collection_id] = _Entry(entry.champion, now, reason)
            return entry.champion
        if entry is not None:
            log.info("%s: champion moved %s -> %s", info.name, entry.champion.version, info.version)
        self._entries[collection_id] = _Entry(champion, now)
        return champion

    def _load(self, info: ModelVersionInfo) -> Champion:
        start = time.perf_counter()
        uri = f"models:/{info.name}/{info.version}"
        try:
            # The version's artifact location, resolved with this client (no global URI).
            source = model_download_uri(self.client, info.name, info.version, self.artifact_root)
            model = self._load_from(source)
        except Exception as exc:  # any failure to load is reported, never served around
            log.exception("loading %s failed", uri)
            self._metrics.error(ErrorKind.MODEL_UNAVAILABLE)
            raise ServingError(
                ErrorKind.MODEL_UNAVAILABLE, f"could not load classifier {uri}: {exc}"
            ) from exc
        champion = champion_from(info, model)
        self._metrics.loaded(CacheKind.CLASSIFIER)
        log.info("loaded %s in %.2f s", uri, time.perf_counter() - start)
        return champion

    def _load_from(self, source: str) -> PyFuncModel:
        """Load in place from a local directory, else download to a temporary one first."""
        parts = urlsplit(source)
        local = Path(parts.path if parts.scheme == "file" else source)
        if parts.scheme in ("", "file") and local.is_dir():
            loaded: PyFuncModel = mlflow.pyfunc.load_model(str(local))
            return loaded
        with tempfile.TemporaryDirectory(prefix="ml-platform-serve-") as tmp:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=self.client.tracking_uri
            )
            downloaded: PyFuncModel = mlflow.pyfunc.load_model(path)
            return downloaded
