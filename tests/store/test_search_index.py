"""The search index in the Store (local and S3): compacted generations round-trip, and two
caches over the same store (two replicas, no shared local files) answer identically."""

from __future__ import annotations

import numpy as np

from ml_platform.defs.resources import StorageResource
from ml_platform.learning.ann_index import l2_normalise
from ml_platform.learning.ann_search import RowFilter, search_segments
from ml_platform.services.search_compaction import CompactionConfig, compact
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from ml_platform.store.search_cache import IndexCache
from ml_platform.store.search_index import indexed_foci, latest_manifest, read_compacted
from tests.services.search_home import FOCUS, add_indexed_batch


def storage_of(settings: Settings) -> StorageResource:
    overrides = {"store_url": settings.store_root}
    if settings.s3_endpoint_url:
        overrides["s3_endpoint_url"] = settings.s3_endpoint_url
    return StorageResource(home=str(settings.resolved_home), overrides=overrides)


def test_two_caches_over_one_store_answer_identically(settings: Settings) -> None:
    storage = storage_of(settings)
    for n in range(3):
        add_indexed_batch(storage, f"b{n}", range(n * 30 + 1, n * 30 + 31), seed=n)
    layout = Layout.for_settings(settings)
    manifest = compact(layout, FOCUS, CompactionConfig(min_new_vectors=50, nlist=4)).manifest
    add_indexed_batch(storage, "b3", range(500, 520), seed=5)  # a batch after compaction
    replicas = [IndexCache(Layout.for_settings(settings), refresh_s=0) for _ in range(2)]
    query = l2_normalise(np.random.default_rng(3).standard_normal((1, 16)))
    answers = [search_segments(r.segments(FOCUS), query, 15, RowFilter(pet_ids=frozenset({1})), 2)
               for r in replicas]  # fmt: skip

    assert manifest is not None and latest_manifest(layout, FOCUS) == manifest
    assert indexed_foci(layout) == [FOCUS]
    assert [r.describe(FOCUS)["tail_batches"] for r in replicas] == [1, 1]
    np.testing.assert_array_equal(answers[0][0], answers[1][0])
    np.testing.assert_array_equal(answers[0][1], answers[1][1])
    assert len(answers[0][0]) == 15
    compacted = read_compacted(layout, FOCUS, manifest)
    assert compacted.nlist == 4 and sorted(compacted.attrs.ids) == list(range(1, 91))
