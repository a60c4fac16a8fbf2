"""`similarity_index` runs make batches searchable; `search_compaction` moves them into IVF."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np

from ml_platform.defs.assets.search_compaction import search_compaction
from ml_platform.defs.assets.similarity import similarity_index
from ml_platform.defs.resources import StorageResource
from ml_platform.store.search_cache import IndexCache
from ml_platform.store.search_index import latest_manifest
from tests.services.search_home import DIM, FOCUS, image
from tests.synthetic_home import add_batch


def test_batches_indexed_by_their_runs_are_compacted_by_the_asset(tmp_path: Path) -> None:
    storage = StorageResource(home=str(tmp_path))
    centres = np.random.default_rng(0).standard_normal((4, DIM))
    keys = ["b1", "b2"]
    for n, key in enumerate(keys):
        images = [image(i, centres, np.random.default_rng(i)) for i in range(n * 20, n * 20 + 20)]
        add_batch(storage, key, images, [FOCUS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", keys)
    for key in keys:
        assert dg.materialize([similarity_index], partition_key=key, instance=instance,
                              resources={"storage": storage}).success  # fmt: skip
    cache = IndexCache(storage.layout(), refresh_s=0)
    assert len(cache.segments(FOCUS)[0].attrs) == 40  # searchable before any compaction

    config = {"min_new_vectors": 30, "nlist": 4, "codec": "sq8"}
    result = dg.materialize(
        [search_compaction], instance=instance, resources={"storage": storage},
        run_config={"ops": {"search_compaction": {"config": config}}},
    )  # fmt: skip

    assert result.success
    manifest = latest_manifest(storage.layout(), FOCUS)
    assert manifest is not None and manifest.batches == ("b1", "b2") and manifest.vectors == 40
    (event,) = result.get_asset_materialization_events()
    reports: dict[str, dict[str, object]] = event.materialization.metadata["indexes"].value  # type: ignore[assignment]
    report = reports[FOCUS.key]
    assert report["outcome"] == "retrained" and report["nlist"] == 4
    assert cache.describe(FOCUS)["tail_batches"] == 2
    cache.segments(FOCUS)
    assert cache.describe(FOCUS)["compacted_vectors"] == 40
