"""Bulk re-checks read in the alias worker process: the serving process's client asks the
registry nothing for them, yet a champion moved while unloaded is served after its reload; a
registry failure in the worker reads as the registry being unreachable (known versions keep
being served); a worker that cannot run leaves the reads in this process (real MLflow sqlite
store, real worker process, real client)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import model_name
from ml_platform.serving import alias_reads
from ml_platform.serving.alias_reads import AliasWorker, worker_for
from ml_platform.serving.champion_index import champion_versions_named
from ml_platform.serving.metrics import ServingMetrics
from ml_platform.serving.model_cache import ChampionCache, CollectionClassifiers
from tests.serving.conftest import CLIP, CLIP_DIM, Store
from tests.serving.test_bulk_rechecks import COLLECTIONS, CountingClient
from tests.serving.test_model_budget import Clock


@pytest.fixture
def worker(store: Store) -> Iterator[AliasWorker]:
    shared = worker_for(store.uri)
    yield shared
    shared.close()


def test_a_bulk_recheck_runs_in_the_worker_and_sees_a_new_champion(
    store: Store, worker: AliasWorker
) -> None:
    store.register(80, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    client, clock = CountingClient(store.uri), Clock()
    cache = ChampionCache(CollectionClassifiers(client), 30.0, ServingMetrics(), clock)
    keys = (*COLLECTIONS, 80)
    cache.seed({c: info for c in keys if (info := get_champion(client, c)) is not None})
    assert [cache.get(c).version for c in keys][-1] == "1"  # loaded
    moved = store.register(80, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)  # promoted
    client.calls.clear()

    clock.now += 31  # every answer is old: each get schedules a re-check
    assert [cache.get(c).version for c in keys][-1] == "1"  # answered from memory
    cache.drain()
    assert worker.pid() is not None  # the worker read the batch and is kept
    # only the moved champion was asked for here (in full); the search of its 4 names (fewer
    # than a search is worth in this process) ran in the worker
    assert client.calls["get_model_version_by_alias"] == 1
    assert client.calls["search_registered_models"] == 0
    assert cache.get(80).version == moved


def test_the_worker_answers_as_the_search_in_this_process(
    store: Store, worker: AliasWorker
) -> None:
    names = [model_name(c) for c in COLLECTIONS] + [model_name(987_654)]  # one missing
    in_process = champion_versions_named(store.client, names * 4)  # 16 names: a search
    assert worker.champion_versions(names) == in_process
    assert set(in_process) == {model_name(c) for c in COLLECTIONS}

    pid = worker.pid()
    assert pid is not None
    worker.close()  # a worker gone is started again by the next read
    assert worker.champion_versions(names) == in_process
    assert worker.pid() not in (None, pid)


def test_a_registry_failure_in_the_worker_raises_as_the_registry_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the worker inherits it
    worker = AliasWorker("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        with pytest.raises(MlflowException, match="alias worker failed"):
            worker.champion_versions(["crawlr-collection-1"])
        assert worker.pid() is not None  # a failed read does not end the worker
    finally:
        worker.close()


@pytest.mark.parametrize(
    "worker_script",
    ["", "import sys\nfor line in sys.stdin: pass\n",
     "import sys\nfor line in sys.stdin: print('a library says hello', flush=True)\n"],
    ids=["cannot-start", "never-answers", "answers-garbage"],
)  # fmt: skip
def test_a_worker_that_cannot_answer_leaves_the_search_in_this_process(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker_script: str
) -> None:
    script = tmp_path / "worker.py"
    if worker_script:
        script.write_text(worker_script)  # reads every line, writes nothing
    monkeypatch.setattr(alias_reads, "WORKER", script)
    monkeypatch.setattr(alias_reads, "REPLY_TIMEOUT_S", 2.0)
    client = CountingClient(store.uri)
    worker = AliasWorker(store.uri)
    names = [model_name(c) for c in COLLECTIONS]
    champions = {c: get_champion(store.client, c) for c in COLLECTIONS}
    expected = {model_name(c): info.version for c, info in champions.items() if info is not None}
    assert champion_versions_named(client, names, worker) == expected
    assert client.calls == Counter({"search_registered_models": 1})  # read here instead
    assert worker.pid() is None  # ended
    client.calls.clear()
    assert champion_versions_named(client, names, worker) == expected  # not tried again yet
    assert client.calls == Counter({"search_registered_models": 1})


def test_close_workers_ends_every_worker_and_a_later_read_starts_one(store: Store) -> None:
    names = [model_name(c) for c in COLLECTIONS]
    first = worker_for(store.uri)
    expected = first.champion_versions(names)
    process = first._process
    assert process is not None and process.poll() is None

    alias_reads.close_workers()  # what the app's lifespan does at shutdown
    assert process.poll() is not None  # the process ended, not merely forgotten
    again = worker_for(store.uri)
    assert again is not first
    try:
        assert again.champion_versions(names) == expected
    finally:
        again.close()
