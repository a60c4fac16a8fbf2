"""Champion classifiers: loaded once, re-checked against the registry at most every N seconds.

`ChampionCache.get(collection_id)` answers from memory while the last alias check is younger
than `refresh_interval_s`; after that it asks the registry which version `champion` points at
and loads that version when it changed (promotion or rollback), without a restart. When the
registry cannot be reached, a loaded champion keeps being served and `problems()` reports the
degradation for `/readyz`; a collection never loaded is then a 503.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from ml_platform.model_registry.lookup import ModelVersionInfo, get_champion
from ml_platform.model_registry.naming import model_name
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
    ) -> None:
        self.client = client
        self.refresh_interval_s = refresh_interval_s
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, collection_id: int) -> Champion:
        """The champion to serve now (see the module docstring for the refresh rule)."""
        entry = self._entries.get(collection_id)
        if entry is not None and not self._due(entry):
            self._metrics.hit(CacheKind.CLASSIFIER)
            return entry.champion
        lock = self._lock_for(collection_id)
        if entry is not None and not lock.acquire(blocking=False):
            self._metrics.hit(CacheKind.CLASSIFIER)  # another request is re-checking it
            return entry.champion
        if entry is None:
            lock.acquire()
        try:
            return self._refresh(collection_id)
        finally:
            lock.release()

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
        if entry is not None and not self._due(entry):  # refreshed while we waited
            self._metrics.hit(CacheKind.CLASSIFIER)
            return entry.champion
        now = self._clock()
        info = self._lookup(collection_id, entry, now)
        if info is None:
            assert entry is not None
            return entry.champion
        if entry is not None and entry.champion.version == info.version:
            self._entries[collection_id] = _Entry(entry.champion, now)
            self._metrics.hit(CacheKind.CLASSIFIER)
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
            source = self.client.get_model_version_download_uri(info.name, info.version)
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
