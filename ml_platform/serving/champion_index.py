"""Every champion of one kind of registered model, read in bulk: the start-up index.

Two paged searches, whatever the number of models (10,000 collections: 10 pages of
registered models, 1 page of versions per 10,000 versions), instead of two registry calls
per model: the registered models give the `champion` alias of each, the model versions their
tags. Serving seeds its caches with the result (`RegistryCache.seed`); models themselves are
loaded on first use, or by the preload within the memory budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from ml_platform.model_registry.lookup import ModelVersionInfo
from ml_platform.model_registry.naming import Alias

log = logging.getLogger(__name__)
MODELS_PAGE = 1000  # the most MLflow returns per search_registered_models page
VERSIONS_PAGE = 10_000


def champion_index(client: MlflowClient, prefix: str) -> dict[str, ModelVersionInfo]:
    """Registered model name -> its champion version, for every model named `prefix*`."""
    start = time.perf_counter()
    champions = _champion_versions(client, prefix)
    infos = {}
    for found in _versions(client, prefix):
        aliases = champions.get(found.name, {})
        if Alias.CHAMPION.value in aliases.get(str(found.version), ()):
            infos[found.name] = _info(found, aliases[str(found.version)])
    log.info("champion index of %s*: %d champions in %.2f s", prefix, len(infos),
             time.perf_counter() - start)  # fmt: skip
    return infos


def _champion_versions(client: MlflowClient, prefix: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """Name -> version -> its aliases, for the models that have a champion."""
    by_name: dict[str, dict[str, tuple[str, ...]]] = {}
    token: str | None = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'", max_results=MODELS_PAGE, page_token=token
        )
        for model in page:
            if Alias.CHAMPION.value in model.aliases:
                by_version: dict[str, tuple[str, ...]] = {}
                for alias, version in sorted(model.aliases.items()):
                    by_version[str(version)] = (*by_version.get(str(version), ()), alias)
                by_name[model.name] = by_version
        token = page.token
        if not token:
            return by_name


def _versions(client: MlflowClient, prefix: str) -> Iterator[ModelVersion]:
    token: str | None = None
    while True:
        page = client.search_model_versions(
            filter_string=f"name LIKE '{prefix}%'", max_results=VERSIONS_PAGE, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def _info(found: ModelVersion, aliases: tuple[str, ...]) -> ModelVersionInfo:
    created = datetime.fromtimestamp(found.creation_timestamp / 1000, tz=UTC)
    return ModelVersionInfo(
        found.name, str(found.version), aliases, dict(found.tags), found.run_id, created
    )
