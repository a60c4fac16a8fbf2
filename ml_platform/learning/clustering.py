"""Cluster one pet's image embeddings; by default agglomerative (Ward) with a distance threshold.

Embeddings are L2-normalised. `agglomerative` (the default), `kmeans` (+ silhouette) and
`consensus` work on them directly (see `cluster_select`); then every image joins its most
similar cluster centroid and is an outlier (-1) only when it is far from every one. `gmm`
(a diagonal mixture chosen by BIC) and `hdbscan` work in a PCA space of at most `pca_dims`
dimensions and mark outliers their own way. `benchmarks/cluster_pets.py` compares them on
real photos; docs/clusters.md has the table. Every result carries a `ClusterModel`, so new
images can be assigned to a pet's clusters later without refitting. Pets too small to split
(fewer than `2 * min_cluster_size` images) become one cluster, or all outliers when they have fewer
than `min_cluster_size` images. `cluster_many` and `recluster_touched` handle many pets.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2
from sklearn.cluster import HDBSCAN
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import ThreadpoolController

from ml_platform.learning import cluster_select
from ml_platform.learning.ann_index import FloatArray, l2_normalise
from ml_platform.learning.cluster_store import (
    Cluster,
    ClusterMethod,
    ClusterModel,
    IntArray,
    PetClusters,
)

__all__ = [
    "Cluster",
    "ClusterConfig",
    "ClusterModel",
    "PetClusters",
    "cluster_many",
    "cluster_pet",
    "recluster_touched",
]

logger = logging.getLogger(__name__)

REG_COVAR = 1e-6
MIN_MAD = 1e-3
ROW_CHUNK = 2048  # rows of the similarity matrix held at once
SILHOUETTE_SAMPLE = 2000  # the silhouette is O(n^2): estimate it on a sample of big pets
# Stop the k scan once BIC has not improved for this many k in a row (BIC is U-shaped in k).
BIC_PATIENCE = 3
# A process pool costs about a second to start; smaller batches run in this process.
MIN_PETS_FOR_POOL = 200
PetEmbeddings = tuple[Sequence[int], NDArray[np.floating]]
METHODS: tuple[ClusterMethod, ...] = ("agglomerative", "kmeans", "consensus", "gmm", "hdbscan")
# Ward height on L2-normalised EfficientNet-Lite0 embeddings where the benchmark pets (10
# photos per breed) split best: 1.5-1.6; 1.3 at 5 photos per breed (docs/clusters.md).
WARD_THRESHOLD = 1.6


@dataclass(frozen=True)
class ClusterConfig:
    """How to cluster one pet.

    `outlier_quantile`: an image is an outlier (-1) when its squared Mahalanobis distance to
    its mixture component is beyond the chi-square quantile a Gaussian point would exceed
    with this probability (0 disables it). For HDBSCAN, noise is -1 and this limit applies to
    new images only. Before either method, isolated images are outliers (see `_isolated`;
    `isolation_mads=0` disables that). `distance_threshold`: the Ward merge height where
    `agglomerative` stops merging; `outlier_mads`: how far under the pet's median cosine to
    its nearest centroid an image must be to be an outlier (agglomerative, kmeans,
    consensus); `min_silhouette`: below it `kmeans` keeps one cluster. PCA keeps
    `min(pca_dims, max(2, n // images_per_dim))` dimensions. `max_iter` bounds EM iterations
    per fit.
    """

    method: ClusterMethod = "agglomerative"
    max_k: int = 8
    min_cluster_size: int = 3
    pca_dims: int = 32
    outlier_quantile: float = 0.001
    seed: int = 0
    max_iter: int = 100
    isolation_mads: float = 6.0
    images_per_dim: int = 10
    distance_threshold: float = WARD_THRESHOLD
    outlier_mads: float = 6.0
    min_silhouette: float = 0.2

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"cluster method {self.method!r} is unknown; known: {METHODS}")
        for name in ("max_k", "min_cluster_size", "pca_dims", "max_iter", "images_per_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClusterConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.distance_threshold <= 0.0 or self.outlier_mads < 0.0:
            raise ValueError(
                f"distance_threshold must be > 0 and outlier_mads >= 0, got "
                f"{self.distance_threshold} and {self.outlier_mads}"
            )
        if self.isolation_mads < 0.0:
            raise ValueError(f"isolation_mads must be >= 0, got {self.isolation_mads}")
        if not 0.0 <= self.outlier_quantile < 0.5:
            raise ValueError(f"outlier_quantile must be in [0, 0.5), got {self.outlier_quantile}")


def cluster_pet(
    image_ids: Sequence[int],
    embeddings: NDArray[np.floating],
    config: ClusterConfig = ClusterConfig(),
    *,
    pet_id: int | None = None,
) -> PetClusters:
    """Cluster one pet's images; `embeddings` is float [n, d], row i for `image_ids[i]`.

    Runs with one BLAS/OpenMP thread: a pet is too small to gain from more, and threads
    fighting over the cores made it ten times slower; parallelism is across pets.
    """
    with _thread_controller().limit(limits=1):
        return _cluster_pet(image_ids, embeddings, config, pet_id)


def _cluster_pet(
    image_ids: Sequence[int],
    embeddings: NDArray[np.floating],
    config: ClusterConfig,
    pet_id: int | None,
) -> PetClusters:
    x = _validated(image_ids, embeddings, pet_id)
    if len(x) < 2 * config.min_cluster_size:
        labels, model = _tiny(x, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    isolated = _isolated(x, config)
    if config.method in ("agglomerative", "kmeans", "consensus"):
        labels, model = _by_centroids(x, isolated, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    inliers = x[~isolated]
    mean, components = _fit_pca(inliers, _pca_dims(len(inliers), config))
    y = (inliers - mean) @ components.T
    labels = np.full(len(x), -1, dtype=np.int64)
    if config.method == "hdbscan":
        labels[~isolated], model = _hdbscan(y, mean, components, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    gmm, bic = _select_gmm(y, config)
    model = _gmm_model(y, gmm, mean, components, config)
    labels[~isolated] = model.assign(inliers)
    return _result(pet_id, image_ids, x, labels, model, gmm.n_components, bic, config)


def _by_centroids(
    x: FloatArray, isolated: NDArray[np.bool_], config: ClusterConfig
) -> tuple[IntArray, ClusterModel]:
    """Raw labels from the method on the non-isolated images, then `place` every image; the
    model is one Gaussian per cluster in PCA space, for assigning new images."""
    raw = np.full(len(x), -1, dtype=np.int64)
    raw[~isolated] = _select_labels(x[~isolated], config)
    labels = cluster_select.place(x, raw, config.min_cluster_size, config.outlier_mads)
    mean, comps = _fit_pca(x[labels >= 0], _pca_dims(int(np.sum(labels >= 0)), config))
    model = ClusterModel.from_members(mean, comps, (x - mean) @ comps.T, labels, REG_COVAR)
    limit = _distance_limit(comps.shape[0], config.outlier_quantile)
    return labels, model.with_labels(model.component_labels, limit)


def _select_labels(x: FloatArray, config: ClusterConfig) -> IntArray:
    c = config
    ward = cluster_select.ward_labels(x, c.distance_threshold, c.max_k, c.min_cluster_size)
    if c.method == "agglomerative":
        return ward
    kmeans = cluster_select.kmeans_silhouette_labels(x, c.max_k, c.min_silhouette, c.seed)
    if c.method == "kmeans":
        return kmeans
    mean, comps = _fit_pca(x, _pca_dims(len(x), c))
    gmm_k = _select_gmm((x - mean) @ comps.T, c)[0].n_components
    counts = [cluster_select.count_big(lab, c.min_cluster_size) for lab in (ward, kmeans)]
    return cluster_select.consensus_labels(x, [*counts, gmm_k])


def _validated(
    image_ids: Sequence[int], embeddings: NDArray[np.floating], pet: int | None
) -> FloatArray:
    if embeddings.ndim != 2 or len(embeddings) != len(image_ids):
        raise ValueError(
            f"pet {pet}: embeddings must be [n, d] with n = {len(image_ids)} image ids, "
            f"got shape {embeddings.shape}"
        )
    if len(set(image_ids)) != len(image_ids):
        raise ValueError(f"pet {pet}: image ids must be unique; deduplicate them first")
    return l2_normalise(embeddings)


def _isolated(x: FloatArray, config: ClusterConfig) -> NDArray[np.bool_]:
    """Images whose (min_cluster_size - 1)-th most similar image is unusually far: cosine more
    than `isolation_mads` median absolute deviations under the pet's median. They would
    otherwise steer the PCA and win mixture components of their own."""
    if config.isolation_mads <= 0.0:
        return np.zeros(len(x), dtype=bool)
    m = max(1, config.min_cluster_size - 1)
    kth = np.concatenate([_kth_similarity(x, i, m) for i in range(0, len(x), ROW_CHUNK)])
    median = float(np.median(kth))
    mad = max(float(np.median(np.abs(kth - median))), MIN_MAD)
    return np.asarray(kth < median - config.isolation_mads * mad)


def _kth_similarity(x: FloatArray, start: int, m: int) -> FloatArray:
    """Cosine of rows start.. (a chunk, to bound memory) to their m-th most similar row."""
    sims = x[start : start + ROW_CHUNK] @ x.T
    sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
    return -np.partition(-sims, m - 1, axis=1)[:, m - 1]


def _pca_dims(n: int, config: ClusterConfig) -> int:
    """At most `pca_dims`, and at most one dimension per `images_per_dim` images (at least 2):
    with more, BIC rarely affords a second diagonal component for a small pet."""
    return min(config.pca_dims, max(2, n // config.images_per_dim))


def _fit_pca(x: FloatArray, dims: int) -> tuple[FloatArray, FloatArray]:
    """Mean and the top `min(dims, n - 1, d)` principal axes (rows) of `x`."""
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1], dtype=np.float32)
    p = min(dims, len(x) - 1, x.shape[1])
    if p <= 0:
        return mean, np.zeros((0, x.shape[1]), dtype=np.float32)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, np.ascontiguousarray(vt[:p], dtype=np.float32)


def _select_gmm(y: NDArray[np.floating], config: ClusterConfig) -> tuple[GaussianMixture, float]:
    """The diagonal mixture with the lowest BIC over k = 1 .. max_k (capped by pet size, and
    stopped once BIC has not improved for `BIC_PATIENCE` k in a row)."""
    k_max = max(1, min(config.max_k, len(y) // config.min_cluster_size))
    best: tuple[GaussianMixture, float] | None = None
    for k in range(1, k_max + 1):
        gmm = GaussianMixture(
            n_components=k,
            covariance_type="diag",
            max_iter=config.max_iter,
            reg_covar=REG_COVAR,
            init_params="kmeans",
            random_state=config.seed,
        )
        with warnings.catch_warnings():
            # Non-convergence within max_iter is expected with few EM steps; BIC still ranks.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(y)
        bic = float(gmm.bic(y))
        if best is None or bic < best[1]:
            best = (gmm, bic)
        elif k - best[0].n_components >= BIC_PATIENCE:
            break
    assert best is not None  # k_max >= 1
    return best


def _gmm_model(
    y: NDArray[np.floating],
    gmm: GaussianMixture,
    mean: FloatArray,
    comps: FloatArray,
    config: ClusterConfig,
) -> ClusterModel:
    """The fitted mixture as a model. Outliers: images too far from their component (see
    `_distance_limit`) and members of components left with fewer than `min_cluster_size`."""
    model = ClusterModel(
        pca_mean=mean,
        pca_components=comps,
        means=gmm.means_.astype(np.float32),
        variances=gmm.covariances_.astype(np.float32),
        weights=gmm.weights_.astype(np.float32),
        component_labels=np.arange(gmm.n_components, dtype=np.int64),
        max_distance_sq=np.inf,
    )
    limit = _distance_limit(y.shape[1], config.outlier_quantile)
    component, dist_sq = model.score_projected(y)
    counts = np.bincount(component[dist_sq <= limit], minlength=gmm.n_components)
    return model.with_labels(_rank_components(counts, config.min_cluster_size), limit)


def _hdbscan(
    y: NDArray[np.floating], mean: FloatArray, comps: FloatArray, config: ClusterConfig
) -> tuple[IntArray, ClusterModel]:
    raw = HDBSCAN(
        min_cluster_size=max(2, config.min_cluster_size), allow_single_cluster=True, copy=True
    ).fit_predict(y)
    counts = np.bincount(raw[raw >= 0], minlength=max(1, int(raw.max()) + 1))
    ranks = _rank_components(counts, config.min_cluster_size)
    labels = np.where(raw >= 0, ranks[np.maximum(raw, 0)], -1).astype(np.int64)
    model = ClusterModel.from_members(mean, comps, y, labels, REG_COVAR)
    limit = _distance_limit(y.shape[1], config.outlier_quantile)
    return labels, model.with_labels(model.component_labels, limit)


def _tiny(x: FloatArray, config: ClusterConfig) -> tuple[IntArray, ClusterModel]:
    """Too few images to split: one cluster (new images always join it) or all outliers."""
    mean, comps = _fit_pca(x, config.pca_dims)
    fill = 0 if len(x) >= config.min_cluster_size else -1
    labels = np.full(len(x), fill, dtype=np.int64)
    y = (x - mean) @ comps.T
    return labels, ClusterModel.from_members(mean, comps, y, labels, REG_COVAR)


def _distance_limit(dims: int, quantile: float) -> float:
    """Squared Mahalanobis distance a Gaussian point exceeds with probability `quantile`."""
    if quantile <= 0.0 or dims == 0:
        return float(np.inf)
    return float(chi2.isf(quantile, dims))


def _rank_components(counts: IntArray, min_size: int) -> IntArray:
    """Label components 0, 1, ... by decreasing size; those under `min_size` get -1."""
    labels = np.full(len(counts), -1, dtype=np.int64)
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] >= min_size]
    labels[order] = np.arange(len(order))
    return labels


def _result(
    pet_id: int | None,
    image_ids: Sequence[int],
    x: FloatArray,
    labels: IntArray,
    model: ClusterModel,
    n_components: int,
    bic: float | None,
    config: ClusterConfig,
) -> PetClusters:
    clusters = tuple(
        Cluster(
            int(lab), int(np.sum(labels == lab)), l2_normalise(x[labels == lab].mean(0)[None])[0]
        )
        for lab in np.unique(labels[labels >= 0])
    )
    return PetClusters(
        pet_id=pet_id,
        image_ids=tuple(int(i) for i in image_ids),
        labels=tuple(int(lab) for lab in labels),
        clusters=clusters,
        n_components=n_components,
        bic=bic,
        silhouette=_silhouette(x, labels),
        method=config.method,
        model=model,
    )


def _silhouette(x: FloatArray, labels: IntArray) -> float | None:
    members = labels >= 0
    n_clusters = len(np.unique(labels[members]))
    if n_clusters < 2 or n_clusters >= int(members.sum()):
        return None
    sample = SILHOUETTE_SAMPLE if members.sum() > SILHOUETTE_SAMPLE else None
    return float(
        silhouette_score(
            x[members], labels[members], metric="cosine", sample_size=sample, random_state=0
        )
    )


def cluster_many(
    embeddings_by_pet: Mapping[int, PetEmbeddings], config: ClusterConfig, *, n_jobs: int = 1
) -> dict[int, PetClusters]:
    """Cluster every pet; with `n_jobs > 1` and enough pets, in a pool of spawned processes."""
    items = [(pet, ids, x, config) for pet, (ids, x) in embeddings_by_pet.items()]
    if n_jobs <= 1 or len(items) < MIN_PETS_FOR_POOL:
        return dict(_cluster_item(item) for item in items)
    chunk = max(1, len(items) // (n_jobs * 8))
    with ProcessPoolExecutor(n_jobs, get_context("spawn")) as pool:
        return dict(pool.map(_cluster_item, items, chunksize=chunk))


def recluster_touched(
    existing: Mapping[int, PetClusters],
    embeddings_by_pet: Mapping[int, PetEmbeddings],
    touched_pets: set[int],
    config: ClusterConfig,
    *,
    n_jobs: int = 1,
) -> dict[int, PetClusters]:
    """Recompute touched pets (and pets with no model yet); keep the rest as the same objects.

    A touched pet that is absent from `embeddings_by_pet` has no images left and is dropped.
    """
    todo = {p for p in embeddings_by_pet if p in touched_pets or p not in existing}
    result = {p: c for p, c in existing.items() if p not in touched_pets}
    dropped = sorted(touched_pets - set(embeddings_by_pet))
    if dropped:
        logger.info(
            "dropping clusters of %d touched pets with no images: %s", len(dropped), dropped
        )
    fresh = cluster_many({p: embeddings_by_pet[p] for p in sorted(todo)}, config, n_jobs=n_jobs)
    return result | fresh


def _cluster_item(
    item: tuple[int, Sequence[int], NDArray[np.floating], ClusterConfig],
) -> tuple[int, PetClusters]:
    pet, ids, x, config = item
    return pet, cluster_pet(ids, x, config, pet_id=pet)


@functools.cache
def _thread_controller() -> ThreadpoolController:
    """Inspecting the loaded thread pools costs milliseconds: do it once per process."""
    return ThreadpoolController()
