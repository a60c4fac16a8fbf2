"""What a `RegistryCache` asks of one kind of registered model (`ChampionSource`: the
champion of a key, read alone or in bulk, and its loading), the errors that mean the
registry could not be read, and `load_champion`: one version loaded, traced and reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol, TypeVar

import requests
from mlflow.exceptions import MlflowException

from ml_platform import telemetry
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import CacheKind, ServingMetrics

log = logging.getLogger(__name__)

REGISTRY_ERRORS: tuple[type[BaseException], ...] = (
    MlflowException,
    OSError,
    requests.RequestException,
)


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


K_in = TypeVar("K_in", int, str, contravariant=True)
V_out = TypeVar("V_out", bound=Versioned, covariant=True)
K = TypeVar("K", int, str)
V = TypeVar("V", bound=Versioned)


class ChampionSource(Protocol[K_in, V_out]):
    """One kind of registered model, as the cache needs it."""

    def describe(self, key: K_in) -> str: ...  # "collection 3", "dataset 'pets'"

    def champion(self, key: K_in) -> ModelVersionInfo | None: ...  # raises REGISTRY_ERRORS

    # the version each key's champion alias names, in `keys` order, read in bulk (None: no
    # champion; raises REGISTRY_ERRORS)
    def champion_versions(self, keys: Sequence[K_in]) -> list[str | None]: ...

    def missing(self, key: K_in) -> ServingError: ...  # no registered model or no champion

    def load(self, key: K_in, info: ModelVersionInfo) -> V_out: ...


def load_champion(
    source: ChampionSource[K, V], key: K, info: ModelVersionInfo, metrics: ServingMetrics
) -> V:
    """`source.load` in an `mlflow.load` span; any failure is a MODEL_UNAVAILABLE error."""
    start = time.perf_counter()
    uri = f"models:/{info.name}/{info.version}"
    attributes = {"model.name": info.name, "model.version": info.version}
    try:
        with telemetry.span("mlflow.load", attributes):
            model = source.load(key, info)
    except Exception as exc:  # any failure to load is reported, never served around
        log.exception("loading %s failed", uri)
        metrics.error(ErrorKind.MODEL_UNAVAILABLE)
        raise ServingError(ErrorKind.MODEL_UNAVAILABLE, f"could not load {uri}: {exc}") from exc
    metrics.loaded(CacheKind.CLASSIFIER)
    log.info("loaded %s in %.2f s", uri, time.perf_counter() - start)
    return model
