"""What the registry said and what is loaded, for a `RegistryCache` (which decides when to
ask): the last registry answer per key (`seed`: many at once, the start-up index), the loaded
champions with the time of their check and why they may be stale, and `_settle`: one
registry answer applied (forget, keep, or load the moved version, within the `ModelBudget`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.champion_source import ChampionSource, Versioned, load_champion
from ml_platform.serving.errors import ServingError
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_size import reachable_bytes

log = logging.getLogger(__name__)
K = TypeVar("K", int, str)
V = TypeVar("V", bound=Versioned)


@dataclass
class Entry(Generic[V]):
    model: V
    checked_at: float
    stale_reason: str | None = None


class LoadedChampions(Generic[K, V]):
    """The last registry answers and the loaded champions, by key."""

    budget_name = "classifier"  # the cache's name in the model budget

    source: ChampionSource[K, V]  # set by the subclass

    def __init__(
        self,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
        budget: ModelBudget | None = None,
    ) -> None:
        self.budget = budget
        self._infos: dict[K, tuple[ModelVersionInfo, float]] = {}  # last registry answers
        self._metrics = metrics
        self._clock = clock
        self._entries: dict[K, Entry[V]] = {}

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
            self._entries[key] = Entry(entry.model, now)
            return entry.model
        if entry is None and not load_unloaded:
            return None  # unloaded: its next request loads this answer
        return self._load_new(key, info, entry, now)

    def _unreachable(self, key: K, exc: BaseException, now: float) -> None:
        """Keep serving `key`'s loaded model, marked stale until the registry answers."""
        entry = self._entries.get(key)
        if entry is not None:
            reason = f"registry unreachable at the last check: {exc}"
            self._entries[key] = Entry(entry.model, now, reason)

    def _load_new(self, key: K, info: ModelVersionInfo, entry: Entry[V] | None, now: float) -> V:
        try:
            model = self._load(key, info)
        except ServingError as exc:
            if entry is None:
                self._infos.pop(key, None)  # the next try asks the registry again
                raise
            log.error("keeping version %s of %s: %s", entry.model.version, info.name, exc)
            reason = f"champion version {info.version} failed to load: {exc.message}"
            self._entries[key] = Entry(entry.model, now, reason)
            return entry.model
        if entry is not None:
            log.info("%s: champion moved %s -> %s", info.name, entry.model.version, info.version)
        # a load from the last registry answer is as fresh as that answer
        self._entries[key] = Entry(model, self._infos.get(key, (info, now))[1])
        if self.budget is not None:
            self.budget.admit(self.budget_name, str(key), reachable_bytes(model),
                              lambda: self._unload(key))  # fmt: skip
        return model

    def _unload(self, key: K) -> None:
        self._entries.pop(key, None)

    def _load(self, key: K, info: ModelVersionInfo) -> V:
        return load_champion(self.source, key, info, self._metrics)
