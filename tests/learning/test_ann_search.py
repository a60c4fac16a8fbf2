"""Filtered segment search: masks from attributes, IVF probing widened by narrow filters,
stored rows given back, near-duplicates across segments."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.learning.ann_index import l2_normalise
from ml_platform.learning.ann_search import (
    NO_TIME,
    Attributes,
    RowFilter,
    Segment,
    build_ivf,
    flat_segment,
    search_segments,
    segment_near_duplicates,
)

N, DIM = 4000, 16


def data() -> tuple[np.ndarray, Attributes]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, DIM)) * 3
    x = (centres[np.arange(N) % 20] + rng.standard_normal((N, DIM))).astype(np.float32)
    ids = np.arange(N, dtype=np.int64) * 10 + 1
    created = np.where(np.arange(N) % 7 == 0, NO_TIME, np.arange(N)).astype(np.int64)
    batches = np.array([f"b{i // 1000}" for i in range(N)], object)
    return x, Attributes(ids, np.arange(N, dtype=np.int64) % 50, created, batches)


@pytest.mark.parametrize(
    ("row_filter", "rows"),
    [
        (RowFilter(pet_ids=frozenset({3, 4})), lambda i: i % 50 in (3, 4)),
        (RowFilter(batches=frozenset({"b1", "b3", "nope"})), lambda i: i // 1000 in (1, 3)),
        (RowFilter(created_after=100, created_before=900), lambda i: 100 <= i < 900 and i % 7),
        (RowFilter(allowed_ids=np.array([11, 21, 31]), denied_ids=np.array([21])),
         lambda i: i in (1, 3)),
    ],
)  # fmt: skip
def test_a_filter_mask_keeps_exactly_the_rows_it_names(row_filter: RowFilter, rows: object) -> None:
    _, attrs = data()
    expected = np.array([bool(rows(i)) for i in range(N)])  # type: ignore[operator]
    np.testing.assert_array_equal(row_filter.mask(attrs), expected)


@pytest.mark.parametrize("exact_below", [0, 20_000], ids=["widened-probe", "exact-rows"])
def test_a_narrow_filter_on_ivf_still_returns_the_exact_top_k(
    exact_below: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ml_platform.learning.ann_search.EXACT_BELOW", exact_below)
    x, attrs = data()
    ivf = Segment(build_ivf(x, 64, "flat"), attrs)
    exact = flat_segment(x, attrs)
    only = RowFilter(pet_ids=frozenset({7}))  # 80 rows spread over the lists
    query = l2_normalise(x[5:6])

    found, _ = search_segments([ivf], query, 20, only, nprobe=1)
    truth, _ = search_segments([exact], query, 20, only)

    assert len(found) == 20 and found.tolist() == truth.tolist()
    assert set((found - 1) // 10 % 50) == {7}


def test_results_from_two_segments_merge_best_first() -> None:
    x, attrs = data()
    half = N // 2
    left = flat_segment(x[:half], Attributes(*(getattr(attrs, f)[:half] for f in
                        ("ids", "pets", "created", "batches"))))  # fmt: skip
    right = flat_segment(x[half:], Attributes(*(getattr(attrs, f)[half:] for f in
                         ("ids", "pets", "created", "batches"))))  # fmt: skip
    whole = flat_segment(x, attrs)
    query = l2_normalise(x[3000:3001])

    merged = search_segments([left, right], query, 15, RowFilter())
    single = search_segments([whole], query, 15, RowFilter())

    assert merged[0].tolist() == single[0].tolist()
    np.testing.assert_allclose(merged[1], single[1], rtol=1e-6)


def test_a_segment_gives_back_its_rows_and_none_for_others() -> None:
    x, attrs = data()
    segment = Segment(build_ivf(x, 16, "fp16"), attrs).with_direct_map()

    row = segment.vector_of(31)
    assert row is not None
    assert float(np.abs(row - l2_normalise(x[3:4])).max()) < 2e-3
    assert segment.vector_of(32) is None


def test_near_duplicates_are_found_across_segments() -> None:
    x, attrs = data()
    segment = flat_segment(x, attrs)
    copy = (x[10:11] + 1e-4).astype(np.float32)
    newcomer = flat_segment(copy, Attributes(np.array([99_999]), np.array([0]), np.array([0]),
                                             np.array(["new"], object)))  # fmt: skip

    pairs = segment_near_duplicates([segment, newcomer], np.array([99_999]), copy, 0.999)

    assert [(a, b) for a, b, _ in pairs] == [(101, 99_999)]
