"""Every champion of one kind of registered model, read in bulk: the start-up index.

Paged searches, whatever the number of models (10,000 collections: 50 pages of registered
models, 1 page of versions per 10,000 versions), instead of two registry calls per model:
the registered models give the `champion` alias of each, the model versions their tags.
Serving seeds its caches with the result (`RegistryCache.seed`); models themselves are loaded
on first use, or by the preload within the memory budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from ml_platform.model_registry.versions import (
    Alias,
    ModelVersionInfo,
    aliases_by_version,
    registered_models,
    version_info,
)

log = logging.getLogger(__name__)
VERSIONS_PAGE = 10_000


def champion_index(client: MlflowClient, prefix: str) -> dict[str, ModelVersionInfo]:
    """Registered model name -> its champion version, for every model named `prefix*`."""
    start = time.perf_counter()
    champions = {model.name: aliases_by_version(model)
                 for model in registered_models(client, prefix)
                 if Alias.CHAMPION.value in model.aliases}  # fmt: skip
    infos = {}
    for found in _versions(client, prefix):
        aliases = champions.get(found.name, {}).get(str(found.version), ())
        if Alias.CHAMPION.value in aliases:
            infos[found.name] = version_info(found, aliases)
    log.info("champion index of %s*: %d champions in %.2f s", prefix, len(infos),
             time.perf_counter() - start)  # fmt: skip
    return infos


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
