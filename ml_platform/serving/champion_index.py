"""Champions of many registered models, read in bulk: the start-up index, and the re-checks.

Paged searches, whatever the number of models (10,000 collections: 50 pages of registered
models, 1 page of versions per 10,000 versions), instead of two registry calls per model:
the registered models give the `champion` alias of each, the model versions their tags.
Serving seeds its caches with the result (`RegistryCache.seed`); models themselves are loaded
on first use, or by the preload within the memory budget. `champion_versions_named` reads
the champion aliases of a list of names (`name IN (...)` searches,
`alias_worker.NAMES_PER_SEARCH` names each; a few names, one alias read each): the re-checks
due at one moment, whose searches run in a worker process (`alias_reads`) when the caller
passes one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from ml_platform.model_registry.versions import (
    Alias,
    ModelVersionInfo,
    aliases_by_version,
    champion_version,
    registered_models,
    version_info,
)
from ml_platform.serving.alias_reads import AliasWorker, WorkerUnavailable
from ml_platform.serving.alias_worker import search_champion_aliases

log = logging.getLogger(__name__)
VERSIONS_PAGE = 10_000
# One `name IN (...)` search costs about as much as this many alias reads (MLflow's SQL store
# builds the search's query anew each time: ~60-110 ms against ~10 ms an alias read, measured
# on benchmarks/serve_scale.py's 10,000-model registry), so fewer names are read one by one.
SEARCH_MIN_NAMES = 10


def champion_index(client: MlflowClient, prefix: str) -> dict[str, ModelVersionInfo]:
    """Registered model name -> its champion version, for every model named `prefix*`."""
    start = time.perf_counter()
    infos = _champions(client, registered_models(client, prefix), f"name LIKE '{prefix}%'")
    log.info("champion index of %s*: %d champions in %.2f s", prefix, len(infos),
             time.perf_counter() - start)  # fmt: skip
    return infos


def champion_versions_named(
    client: MlflowClient, names: Sequence[str], worker: AliasWorker | None = None
) -> dict[str, str]:
    """Registered model name -> the version its `champion` alias names, for those of `names`
    that have one: one search of registered models per `NAMES_PER_SEARCH` names, in `worker`'s
    process when given (however few: nobody waits for it), else here, or one alias read per
    name when they are fewer than `SEARCH_MIN_NAMES`."""
    plain = sorted({name for name in names if "'" not in name})  # a quote: read alone
    searched = plain if worker is not None or len(plain) >= SEARCH_MIN_NAMES else []
    read = (champion_by_alias(client, name) for name in set(names).difference(searched))
    versions = {info.name: info.version for info in read if info is not None}
    return versions | _searched(client, searched, worker) if searched else versions


def _searched(client: MlflowClient, names: list[str], worker: AliasWorker | None) -> dict[str, str]:
    if worker is not None:
        try:
            return worker.champion_versions(names)
        except WorkerUnavailable as exc:
            log.warning("%s; reading %d champion aliases in this process", exc, len(names))
    return search_champion_aliases(client, names)


def champion_by_alias(client: MlflowClient, name: str) -> ModelVersionInfo | None:
    """The champion version of registered model `name` in one registry call (None: no model,
    or no champion), as `versions.champion_version` answers it in two."""
    try:
        found = client.get_model_version_by_alias(name, Alias.CHAMPION.value)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None  # no such model
        if exc.error_code != ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise
        return champion_version(client, name)  # MLflow's "no such alias": asked the long way
    return version_info(found, tuple(sorted(found.aliases)))


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
