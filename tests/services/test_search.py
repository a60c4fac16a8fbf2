"""Search as plain functions over a small catalog: each query kind, each filter, the index
growing by batches and by compaction, and the errors a client can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus
from ml_platform.services.search import (
    Encoded,
    Encoders,
    Filters,
    Query,
    SearchError,
    SearchResult,
    search,
)
from ml_platform.services.search_compaction import CompactionConfig, compact
from ml_platform.store.search_cache import IndexCache
from tests.services.search_home import (
    FOCUS,
    MEMBERS_OF,
    PER_BATCH,
    add_indexed_batch,
    created,
    exact_top,
    vectors_by_id,
)

BATCHES = ["b0", "b1", "b2"]


def no_text(focus: Focus, text: str) -> Encoded:
    raise SearchError(f"focus {focus.key} has no text tower")


def no_image(focus: Focus, data: bytes) -> Encoded:
    raise SearchError(f"cannot embed images for {focus.key} here")


NO_CHAMPION = Encoders(text=no_text, image=no_image, champion=lambda cid: None)


@pytest.fixture
def storage(tmp_path: Path) -> StorageResource:
    storage = StorageResource(home=str(tmp_path))
    for n, key in enumerate(BATCHES):
        add_indexed_batch(storage, key, range(n * PER_BATCH + 1, (n + 1) * PER_BATCH + 1), n)
    return storage


def run(storage: StorageResource, query: Query, encoders: Encoders = NO_CHAMPION,
        cache: IndexCache | None = None, **kwargs: object) -> SearchResult:  # fmt: skip
    layout = storage.layout()
    cache = cache or IndexCache(layout, refresh_s=0)
    return search(layout, cache, encoders, query, default_focus=FOCUS, **kwargs)  # type: ignore[arg-type]


def test_image_id_query_matches_exact_search_and_leaves_the_image_out(
    storage: StorageResource,
) -> None:
    table = vectors_by_id(storage, BATCHES)
    result = run(storage, Query(image_id=12), limit=10)

    assert [h.image_id for h in result.hits] == exact_top(table, table[12], 10, set(table) - {12})
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert result.focus == FOCUS and result.query == {"kind": "image_id", "image_id": 12}


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (Filters(pet_id=2), lambda i: i % 4 == 2),
        (Filters(batch="b1"), lambda i: PER_BATCH < i <= 2 * PER_BATCH),
        (Filters(created_after=created(20), created_before=created(50)), lambda i: 20 <= i < 50),
        (Filters(collection_id=MEMBERS_OF), lambda i: i % 5 == 0),
        (Filters(exclude_collection_id=MEMBERS_OF), lambda i: i % 5 not in (0, 1)),
        (Filters(pet_id=1, exclude_collection_id=MEMBERS_OF), lambda i: i % 4 == 1 and i % 5 > 1),
    ],
)
def test_filters_return_the_exact_top_among_the_images_they_allow(
    storage: StorageResource, filters: Filters, allowed: object
) -> None:
    table = vectors_by_id(storage, BATCHES)
    keep = {i for i in table if allowed(i) and i != 3}  # type: ignore[operator]
    result = run(storage, Query(image_id=3), limit=8, filters=filters)

    assert [h.image_id for h in result.hits] == exact_top(table, table[3], 8, keep)


def test_a_collection_without_a_champion_searches_from_its_members_centroid(
    storage: StorageResource,
) -> None:
    table = vectors_by_id(storage, BATCHES)
    members = [v for i, v in table.items() if i % 5 == 0]
    centroid = np.mean(members, axis=0)
    result = run(storage, Query(collection_id=MEMBERS_OF), limit=5)

    assert [h.image_id for h in result.hits] == exact_top(table, centroid, 5, set(table))
    assert result.query["direction"] == "centroid" and result.query["members"] == len(members)


def test_a_champion_direction_is_searched_when_there_is_one(storage: StorageResource) -> None:
    table = vectors_by_id(storage, BATCHES)
    direction = table[40] - table[41]
    encoders = Encoders(
        no_text, no_image, lambda cid: (FOCUS, Encoded(direction, {"direction": "champion"}))
    )
    result = run(storage, Query(collection_id=MEMBERS_OF), encoders, limit=5)

    assert [h.image_id for h in result.hits] == exact_top(table, direction, 5, set(table))
    assert result.query["direction"] == "champion"


@pytest.mark.parametrize("query", [Query(), Query(text="a dog", image_id=3)])
def test_zero_or_two_query_kinds_are_refused(storage: StorageResource, query: Query) -> None:
    with pytest.raises(SearchError, match="exactly one query") as caught:
        run(storage, query)
    assert caught.value.status == 422


def test_text_on_a_focus_without_a_text_tower_names_the_focus(storage: StorageResource) -> None:
    with pytest.raises(SearchError, match=FOCUS.key):
        run(storage, Query(text="a dog on a beach"))


@pytest.mark.parametrize(("kwargs", "status", "words"), [
    ({"query": Query(image_id=10_000)}, 404, "no ingestion batch"),
    ({"query": Query(image_id=3), "limit": 201}, 422, "limit must be"),
    ({"query": Query(image_id=3), "focus": Focus.from_key("whole_image__embed_dino_v2")}, 404,
     "embed_dino_v2"),
])  # fmt: skip
def test_client_mistakes_say_what_is_wrong(
    storage: StorageResource, kwargs: dict[str, object], status: int, words: str
) -> None:
    with pytest.raises(SearchError, match=words) as caught:
        run(storage, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status


def test_a_new_batch_is_searchable_as_soon_as_its_shard_exists(storage: StorageResource) -> None:
    cache = IndexCache(storage.layout(), refresh_s=0)
    before = run(storage, Query(image_id=3), cache=cache, limit=200)
    add_indexed_batch(storage, "b3", range(1000, 1010), seed=7)
    after = run(storage, Query(image_id=3), cache=cache, limit=200)

    assert len(before.hits) == 3 * PER_BATCH - 1
    assert {h.image_id for h in after.hits} - {h.image_id for h in before.hits} == set(
        range(1000, 1010)
    )


def test_compaction_covers_the_shards_and_later_batches_extend_it(
    storage: StorageResource,
) -> None:
    layout = storage.layout()
    table = vectors_by_id(storage, BATCHES)
    skipped = compact(layout, FOCUS, CompactionConfig(min_new_vectors=1000))
    config = CompactionConfig(min_new_vectors=10, codec="flat", nlist=4)
    first = compact(layout, FOCUS, config)
    cache = IndexCache(layout, refresh_s=0)
    result = run(storage, Query(image_id=5), cache=cache, limit=10, nprobe=4)

    assert skipped.manifest is None and "min_new_vectors" in skipped.reason
    assert (
        first.manifest is not None and first.retrained and first.manifest.batches == tuple(BATCHES)
    )
    assert cache.describe(FOCUS)["tail_batches"] == 0
    assert [h.image_id for h in result.hits] == exact_top(table, table[5], 10, set(table) - {5})

    add_indexed_batch(storage, "b3", range(1000, 1030), seed=7)
    assert run(storage, Query(image_id=1001), cache=cache, limit=1).hits  # tail, before compaction
    second = compact(layout, FOCUS, config)
    run(storage, Query(image_id=5), cache=cache)
    assert second.manifest is not None and not second.retrained and second.new_batches == 1
    assert cache.describe(FOCUS) == {
        "compacted": second.manifest.generation, "compacted_vectors": 120,
        "tail_batches": 0, "tail_vectors": 0,
    }  # fmt: skip
