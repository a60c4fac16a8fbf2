"""Champions of many registered models, read in bulk: the start-up index, and the re-checks.

Paged searches, whatever the number of models (10,000 collections: 50 pages of registered
models, 1 page of versions per 10,000 versions), instead of two registry calls per model:
the registered models give the `champion` alias of each, the model versions their tags.
Serving seeds its caches with the result (`RegistryCache.seed`); models themselves are loaded
on first use, or by the preload within the memory budget. `champion_versions_named` reads
the champion aliases of a list of names (`name IN (...)`, `NAMES_PER_SEARCH` at a time): the
re-checks due at one moment, one search instead of two registry calls per model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel

from ml_platform.model_registry.versions import (
    Alias,
    ModelVersionInfo,
    aliases_by_version,
    champion_version,
    registered_models,
    version_info,
)

log = logging.getLogger(__name__)
VERSIONS_PAGE = 10_000
NAMES_PER_SEARCH = 100  # names in one `name IN (...)` filter


def champion_index(client: MlflowClient, prefix: str) -> dict[str, ModelVersionInfo]:
    """Registered model name -> its champion version, for every model named `prefix*`."""
    start = time.perf_counter()
    infos = _champions(client, registered_models(client, prefix), f"name LIKE '{prefix}%'")
    log.info("champion index of %s*: %d champions in %.2f s", prefix, len(infos),
             time.perf_counter() - start)  # fmt: skip
    return infos


def champion_versions_named(client: MlflowClient, names: Sequence[str]) -> dict[str, str]:
    """Registered model name -> the version its `champion` alias names, for those of `names`
    that have one: one search of registered models per `NAMES_PER_SEARCH` names."""
    plain = sorted({name for name in names if "'" not in name})  # a quote: asked alone
    quoted = (champion_version(client, name) for name in names if "'" in name)
    versions = {info.name: info.version for info in quoted if info is not None}
    for start in range(0, len(plain), NAMES_PER_SEARCH):
        chunk = plain[start : start + NAMES_PER_SEARCH]
        for model in client.search_registered_models(
            filter_string=_named(chunk), max_results=len(chunk)
        ):
            version = model.aliases.get(Alias.CHAMPION.value)
            if version is not None:
                versions[model.name] = str(version)
    return versions


def _champions(
    client: MlflowClient, models: Sequence[RegisteredModel], versions_filter: str
) -> dict[str, ModelVersionInfo]:
    """The champion version of each of `models`, their versions read by `versions_filter`."""
    champions = {model.name: aliases_by_version(model)
                 for model in models if Alias.CHAMPION.value in model.aliases}  # fmt: skip
    infos = {}
    for found in _versions(client, versions_filter):
        aliases = champions.get(found.name, {}).get(str(found.version), ())
        if Alias.CHAMPION.value in aliases:
            infos[found.name] = version_info(found, aliases)
    return infos


def _named(names: Sequence[str]) -> str:
    return "name IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def _versions(client: MlflowClient, filter_string: str) -> Iterator[ModelVersion]:
    token: str | None = None
    while True:
        page = client.search_model_versions(
            filter_string=filter_string, max_results=VERSIONS_PAGE, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return
