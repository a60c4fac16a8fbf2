"""Per-pet clustering, incremental reclustering and the projection plot."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from ml_platform.learning import clustering
from ml_platform.learning.ann_index import l2_normalise
from ml_platform.learning.cluster_store import ClusterMethod
from ml_platform.learning.clustering import (
    ClusterConfig,
    PetClusters,
    cluster_many,
    cluster_pet,
    recluster_touched,
)
from ml_platform.learning.projection import projection_figure, projection_png

DIM = 512


@dataclass(frozen=True)
class Mixture:
    x: NDArray[np.float32]
    truth: NDArray[np.int64]  # -1 for planted outliers
    centres: NDArray[np.float64]


def mixture(k: int, n: int, *, seed: int, noise: float = 0.7, n_outliers: int = 0) -> Mixture:
    """`k` well-separated unit centres in 512-d, isotropic noise, plus random far points."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.arange(n) % k
    x = centres[truth] + rng.normal(size=(n, DIM)) * noise / np.sqrt(DIM)
    outliers = rng.normal(size=(n_outliers, DIM))
    return Mixture(
        np.vstack([x, outliers]).astype(np.float32),
        np.concatenate([truth, np.full(n_outliers, -1)]),
        centres,
    )


def purity(labels: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Share of clustered (label >= 0) images whose cluster's majority truth matches theirs."""
    clustered = labels >= 0
    hits = sum(
        np.bincount(truth[clustered & (labels == lab)] + 1).max()
        for lab in np.unique(labels[clustered])
    )
    return float(hits / clustered.sum())


def ids(n: int, start: int = 1000) -> list[int]:
    return list(range(start, start + n))


@pytest.mark.parametrize(("k", "seed"), [(1, 0), (3, 1), (4, 2), (5, 3)])
def test_gmm_recovers_well_separated_clusters(k: int, seed: int) -> None:
    m = mixture(k, 120, seed=seed)
    result = cluster_pet(ids(len(m.x)), m.x, ClusterConfig(method="gmm"))
    labels = np.array(result.labels)
    assert purity(labels, m.truth) >= 0.9
    assert result.k == k
    assert result.bic is not None
    assert np.mean(labels == -1) <= 0.05
    assert (result.silhouette is None) == (k == 1)


def test_gmm_labels_planted_far_images_as_outliers() -> None:
    m = mixture(3, 100, seed=4, n_outliers=3)
    result = cluster_pet(ids(len(m.x)), m.x, ClusterConfig())
    labels = np.array(result.labels)
    assert np.all(labels[m.truth == -1] == -1)
    assert result.k == 3
    assert purity(labels, m.truth) >= 0.9


def test_hdbscan_recovers_clusters_and_marks_noise_as_outliers() -> None:
    m = mixture(4, 100, seed=5, n_outliers=3)
    result = cluster_pet(ids(len(m.x)), m.x, ClusterConfig(method="hdbscan"))
    labels = np.array(result.labels)
    assert result.method == "hdbscan"
    assert result.bic is None
    assert result.k == 4
    assert np.all(labels[m.truth == -1] == -1)
    assert purity(labels, m.truth) >= 0.9


@pytest.mark.parametrize("method", ["gmm", "hdbscan"])
def test_model_assigns_new_images_without_refitting(method: ClusterMethod) -> None:
    m = mixture(3, 90, seed=6)
    result = cluster_pet(ids(90), m.x, ClusterConfig(method=method))
    rng = np.random.default_rng(7)
    fresh = m.centres + rng.normal(size=m.centres.shape) * 0.7 / np.sqrt(DIM)
    far = rng.normal(size=(1, DIM))
    assigned = result.model.assign(np.vstack([fresh, far]))
    by_truth = {int(t): result.labels_by_image[i] for i, t in zip(ids(90), m.truth, strict=True)}
    assert assigned[:3].tolist() == [by_truth[0], by_truth[1], by_truth[2]]
    assert assigned[3] == -1


def test_clusters_carry_unit_centroids_near_the_true_centres_and_sizes() -> None:
    m = mixture(3, 90, seed=8)
    result = cluster_pet(ids(90), m.x, ClusterConfig())
    assert sum(c.size for c in result.clusters) == len(result.image_ids) - result.n_outliers
    for c in result.clusters:
        assert np.linalg.norm(c.centroid) == pytest.approx(1.0, abs=1e-5)
        assert float(np.max(m.centres @ c.centroid)) > 0.75
        assert len(result.members(c.label)) == c.size


def test_big_pet_shortcuts_give_the_same_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Similarities in row chunks and a sampled silhouette, as for pets with 1000s of images."""
    m = mixture(3, 120, seed=12, n_outliers=2)
    x = l2_normalise(m.x)
    whole = cluster_pet(ids(122), m.x)
    kth_whole = clustering._kth_similarity(x, 0, 2)
    monkeypatch.setattr(clustering, "ROW_CHUNK", 16)
    monkeypatch.setattr(clustering, "SILHOUETTE_SAMPLE", 60)
    chunked = cluster_pet(ids(122), m.x)
    kth_chunked = np.concatenate([clustering._kth_similarity(x, i, 2) for i in range(0, 122, 16)])
    np.testing.assert_allclose(kth_chunked, kth_whole, atol=1e-6)
    assert chunked.labels == whole.labels
    assert chunked.silhouette == pytest.approx(whole.silhouette, abs=0.05)


@pytest.mark.parametrize(
    ("n", "expected_labels", "expected_k"),
    [(0, set(), 0), (2, {-1}, 0), (3, {0}, 1), (5, {0}, 1)],
)
def test_tiny_pet_is_one_cluster_or_all_outliers(
    n: int, expected_labels: set[int], expected_k: int
) -> None:
    """Under 2 * min_cluster_size images: one cluster, or all outliers under min_cluster_size."""
    x = mixture(2, n, seed=9).x
    result = cluster_pet(ids(n), x, ClusterConfig(min_cluster_size=3), pet_id=7)
    assert (result.pet_id, set(result.labels), result.k) == (7, expected_labels, expected_k)
    assert result.silhouette is None and result.bic is None
    new_labels = result.model.assign(np.ones((2, DIM)))
    assert set(new_labels.tolist()) == ({0} if expected_k else {-1})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "spectral"},
        {"max_k": 0},
        {"min_cluster_size": 0},
        {"outlier_quantile": 0.7},
        {"distance_threshold": 0.0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be|unknown"):
        ClusterConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image_ids", "x", "message"),
    [
        ([1, 2], np.ones((3, 8)), "embeddings must be"),
        ([1, 1, 2], np.ones((3, 8)), "unique"),
        ([1, 2, 3], np.zeros((3, 8)), "zero norm"),
        ([1, 2, 3], np.full((3, 8), np.nan), "NaN"),
    ],
)
def test_cluster_pet_rejects_bad_input(image_ids: list[int], x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_pet(image_ids, x)


def pets(n_pets: int) -> dict[int, tuple[list[int], NDArray[np.float32]]]:
    return {
        p: (ids(40, start=p * 1000), mixture(2 + p % 2, 40, seed=100 + p).x) for p in range(n_pets)
    }


def test_recluster_touched_recomputes_only_touched_pets(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pets(4)
    config = ClusterConfig(max_k=4)
    existing = cluster_many(data, config)
    calls: list[int | None] = []
    real = clustering.cluster_pet

    def spy(*args: object, **kwargs: object) -> PetClusters:
        calls.append(kwargs.get("pet_id"))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(clustering, "cluster_pet", spy)
    new_ids, new_x = ids(41, start=1000), mixture(2, 41, seed=999).x
    updated = recluster_touched(existing, {**data, 1: (new_ids, new_x)}, {1}, config)
    assert calls == [1]
    assert all(updated[p] is existing[p] for p in (0, 2, 3))
    assert updated[1] is not existing[1] and len(updated[1].image_ids) == 41


def test_recluster_touched_adds_new_pets_and_drops_pets_without_images() -> None:
    data = pets(3)
    config = ClusterConfig(max_k=4)
    existing = cluster_many({0: data[0], 1: data[1]}, config)
    updated = recluster_touched(existing, {0: data[0], 2: data[2]}, {1}, config)
    assert sorted(updated) == [0, 2]
    assert updated[0] is existing[0]
    assert updated[2].pet_id == 2


def test_cluster_many_in_a_process_pool_matches_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pets(4)
    config = ClusterConfig(max_k=4)
    serial = cluster_many(data, config)
    monkeypatch.setattr(clustering, "MIN_PETS_FOR_POOL", 0)
    pooled = cluster_many(data, config, n_jobs=2)
    assert {p: c.labels for p, c in pooled.items()} == {p: c.labels for p, c in serial.items()}


def test_projection_png_is_a_readable_png_with_axes_and_a_legend_of_sizes() -> None:
    m = mixture(3, 60, seed=11, n_outliers=2)
    labels = cluster_pet(ids(62), m.x).labels
    png = projection_png(m.x, labels, title="pet 1")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (600, 450)
    (ax,) = projection_figure(m.x, labels).axes
    assert ax.get_xlabel().startswith("PC 1 (") and ax.get_ylabel().startswith("PC 2 (")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    sizes = {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)}
    expected = [f"cluster {k} (n={n})" if k >= 0 else f"outliers (n={n})" for k, n in sizes.items()]
    assert sorted(legend) == sorted(expected)
    with pytest.raises(ValueError, match="pair up"):
        projection_png(m.x, labels[:-1])
