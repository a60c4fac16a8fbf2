"""The cosine ANN index: adds without duplicates, self-search, persistence, near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ml_platform.learning.ann_index import AnnIndex, l2_normalise, near_duplicates

DIM = 64


def vectors(n: int, seed: int = 0) -> NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def test_adding_the_same_ids_twice_does_not_duplicate() -> None:
    index = AnnIndex.create(DIM)
    x = vectors(10)
    assert index.add(np.arange(10), x) == 10
    assert index.add(np.arange(5, 15), vectors(10, seed=1)) == 5
    assert len(index) == 15
    assert index.add([20, 20, 21], vectors(3, seed=2)) == 2
    assert len(index) == 17 and 20 in index and 99 not in index


def test_search_finds_each_image_itself_first() -> None:
    index = AnnIndex.create(DIM)
    x = vectors(50)
    index.add(np.arange(100, 150), x * 7.0)  # scale must not matter: cosine
    found, sims = index.search(x, k=3)
    assert found.shape == (50, 3) and found.dtype == np.int64
    assert found[:, 0].tolist() == list(range(100, 150))
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)


def test_search_returns_at_most_the_stored_count() -> None:
    index = AnnIndex.create(DIM)
    assert index.search(vectors(2), k=5)[0].shape == (2, 0)
    index.add([1, 2], vectors(2))
    found, sims = index.search(vectors(1, seed=3), k=5)
    assert found.shape == sims.shape == (1, 2)


def test_index_survives_a_bytes_round_trip() -> None:
    index = AnnIndex.create(DIM)
    x = vectors(20)
    index.add(np.arange(20) * 3, x)
    loaded = AnnIndex.from_bytes(index.to_bytes())
    assert (len(loaded), loaded.dim) == (20, DIM)
    assert loaded.add([0, 3, 1000], vectors(3, seed=4)) == 1  # known ids still skipped
    np.testing.assert_array_equal(loaded.search(x[:5], 1)[0][:, 0], [0, 3, 6, 9, 12])


def test_merge_adds_only_ids_not_present() -> None:
    first, second = AnnIndex.create(DIM), AnnIndex.create(DIM)
    first.add([1, 2], vectors(2))
    second.add([2, 3, 4], vectors(3, seed=6))
    assert first.merge(second) == 2 and len(first) == 4 and 4 in first
    with pytest.raises(ValueError, match="d=8"):
        first.merge(AnnIndex.create(8))


def test_near_duplicates_reports_each_close_pair_once() -> None:
    x = vectors(30)
    x[7] = x[3] + 0.01 * vectors(1, seed=5)[0]  # a near-copy of image 3
    index = AnnIndex.create(DIM)
    index.add(np.arange(30), x)
    pairs = near_duplicates(index, np.arange(30), x, threshold=0.95)
    assert [(a, b) for a, b, _ in pairs] == [(3, 7)]
    assert pairs[0][2] > 0.99


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.ones((2, DIM + 1)), "d=65"),
        (np.zeros((1, DIM)), "zero norm"),
        (np.ones(DIM), "2-D"),
        (np.full((1, DIM), np.inf), "infinite"),
    ],
)
def test_bad_embeddings_are_refused(x: np.ndarray, message: str) -> None:
    index = AnnIndex.create(DIM)
    with pytest.raises(ValueError, match=message):
        index.add(np.arange(len(np.atleast_2d(x))), x)


def test_from_bytes_refuses_another_index_type() -> None:
    import faiss

    flat = faiss.serialize_index(faiss.IndexFlatIP(DIM)).tobytes()
    with pytest.raises(ValueError, match="not an IndexIDMap2"):
        AnnIndex.from_bytes(flat, "shard.faiss")


def test_l2_normalise_returns_unit_rows_and_leaves_input_alone() -> None:
    x = vectors(4) * 3.0
    unit = l2_normalise(x)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    assert np.linalg.norm(x[0]) > 2.0
