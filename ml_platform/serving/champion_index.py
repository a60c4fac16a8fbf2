"""Champions of many registered models, read in bulk: the start-up index, and the re-checks.

Paged searches, whatever the number of models (10,000 collections: 50 pages of registered
models, 40 of versions), instead of two registry calls per model: the registered models give
the `champion` alias of each (only that is kept of a model), the model versions their tags
(kept for champions only, each distinct tag string once).
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
from dataclasses import replace

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from ml_platform.model_registry.versions import (
    Alias,
    ModelVersionInfo,
    alias_version,
    aliases_by_version,
    champion_version,
    iter_registered_models,
    version_info,
)
from ml_platform.serving.alias_reads import AliasWorker, WorkerUnavailable
from ml_platform.serving.alias_worker import search_champion_aliases

log = logging.getLogger(__name__)
# A page of versions is read whole, its ORM rows and tags beside the index being built, and
# leaves the heap fragmented once freed. The index's RSS at 10,000 champions by page size
# (before tag strings were shared): 10,000: 69 MB, 1,000: 38, 500: 31, 250: 28, 100: 25, read
# in the same time within noise (the registered-model pages take 2/3 of it). 250: the last
# halving that still cut it by more than a tenth. Now +21 MB, ~9 MB of it live
# (`benchmarks/serve_memory.py --until index --tree /work/main --tree .`).
VERSIONS_PAGE = 250
VERSIONS_ORDER = ["name ASC", "version_number ASC"]
# One `name IN (...)` search costs about as much as this many alias reads (MLflow's SQL store
# builds the search's query anew each time: ~60-110 ms against ~10 ms an alias read, measured
# on benchmarks/serve_scale.py's 10,000-model registry), so fewer names are read one by one.
SEARCH_MIN_NAMES = 10


def champion_index(client: MlflowClient, prefix: str) -> dict[str, ModelVersionInfo]:
    """Registered model name -> its champion version, for every model named `prefix*`."""
    start = time.perf_counter()
    infos = _champions(client, _champion_aliases(client, prefix), f"name LIKE '{prefix}%'")
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


def _champion_aliases(client: MlflowClient, prefix: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Registered model name -> (its champion version, that version's aliases), for the
    models named `prefix*` that have a champion; only that is kept of each model."""
    champions = {}
    for model in iter_registered_models(client, prefix):
        version = alias_version(model, Alias.CHAMPION)
        if version is not None:
            champions[model.name] = (version, aliases_by_version(model)[version])
    return champions


def _champions(
    client: MlflowClient, champions: dict[str, tuple[str, tuple[str, ...]]], versions_filter: str
) -> dict[str, ModelVersionInfo]:
    """The champion version of each of `champions`, the versions read by `versions_filter`."""
    infos = {}
    shared: dict[str, str] = {}  # one copy of each tag key and value (10,000 `weights` keys...)
    for found in _versions(client, versions_filter):
        wanted = champions.get(found.name)
        if wanted is not None and wanted[0] == str(found.version):
            info = version_info(found, wanted[1])
            tags = {shared.setdefault(k, k): shared.setdefault(v, v) for k, v in info.tags.items()}
            infos[found.name] = replace(info, tags=tags)
    return infos


def _versions(client: MlflowClient, filter_string: str) -> Iterator[ModelVersion]:
    """Every version `filter_string` finds, `VERSIONS_PAGE` at a time, ordered by the
    registry's key: a version whose tags change meanwhile keeps its place (by the default
    order, last update first, it would move to the first page and shift one past a page's
    end)."""
    token: str | None = None
    while True:
        page = client.search_model_versions(
            filter_string=filter_string, max_results=VERSIONS_PAGE, order_by=VERSIONS_ORDER,
            page_token=token,
        )  # fmt: skip
        token = page.token
        yield from page
        del page  # before the next page is read
        if not token:
            return
