"""Cluster one pet's image embeddings; by default agglomerative (Ward) with a distance threshold.

Embeddings are L2-normalised. `agglomerative` (the default), `kmeans` (+ silhouette) and
`consensus` work on them directly (see `cluster_select`); then every image joins its most
similar cluster centroid and is an outlier (-1) only when it is far from every one. `gmm`
(a diagonal mixture chosen by BIC) and `hdbscan` work in a PCA space of at most `pca_dims`
dimensions and mark outliers their own way. `benchmarks/cluster_pets.py` compares them on
real photos; docs/clusters.md has the table. `ClusterConfig` lives in `cluster_config`, the
PCA, GMM and HDBSCAN code in `cluster_mixture`. Every result carries a `ClusterModel`, so new
images can be assigned to a pet's clusters later without refitting. Pets too small to split
(fewer than `2 * min_cluster_size` images) become one cluster, or all outliers when they have fewer
than `min_cluster_size` images. `cluster_many` and `recluster_touched` handle many pets.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import silhouette_score
from threadpoolctl import ThreadpoolController

from ml_platform.learning import cluster_select
from ml_platform.learning.ann_index import FloatArray, l2_normalise
from ml_platform.learning.cluster_config import METHODS, WARD_THRESHOLD, ClusterConfig
from ml_platform.learning.cluster_mixture import (
    REG_COVAR,
    distance_limit,
    fit_pca,
    gmm_model,
    hdbscan_model,
    pca_dims,
    select_gmm,
    tiny_model,
)
from ml_platform.learning.cluster_store import Cluster, ClusterModel, IntArray, PetClusters

__all__ = [
    "METHODS",
    "WARD_THRESHOLD",
    "Cluster",
    "ClusterConfig",
    "ClusterModel",
    "PetClusters",
    "cluster_many",
    "cluster_pet",
    "recluster_touched",
]

logger = logging.getLogger(__name__)

MIN_MAD = 1e-3
ROW_CHUNK = 2048  # rows of the similarity matrix held at once
SILHOUETTE_SAMPLE = 2000  # the silhouette is O(n^2): estimate it on a sample of big pets
# A process pool costs about a second to start; smaller batches run in this process.
MIN_PETS_FOR_POOL = 200
PetEmbeddings = tuple[Sequence[int], NDArray[np.floating]]
DEFAULT_CONFIG = ClusterConfig()


def cluster_pet(
    image_ids: Sequence[int],
    embeddings: NDArray[np.floating],
    config: ClusterConfig = DEFAULT_CONFIG,
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
        labels, model = tiny_model(x, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    isolated = _isolated(x, config)
    if config.method in ("agglomerative", "kmeans", "consensus"):
        labels, model = _by_centroids(x, isolated, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    inliers = x[~isolated]
    mean, components = fit_pca(inliers, pca_dims(len(inliers), config))
    y = (inliers - mean) @ components.T
    labels = np.full(len(x), -1, dtype=np.int64)
    if config.method == "hdbscan":
        labels[~isolated], model = hdbscan_model(y, mean, components, config)
        return _result(pet_id, image_ids, x, labels, model, len(model.weights), None, config)
    gmm, bic = select_gmm(y, config)
    model = gmm_model(y, gmm, mean, components, config)
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
    mean, comps = fit_pca(x[labels >= 0], pca_dims(int(np.sum(labels >= 0)), config))
    model = ClusterModel.from_members(mean, comps, (x - mean) @ comps.T, labels, REG_COVAR)
    limit = distance_limit(comps.shape[0], config.outlier_quantile)
    return labels, model.with_labels(model.component_labels, limit)


def _select_labels(x: FloatArray, config: ClusterConfig) -> IntArray:
    c = config
    ward = cluster_select.ward_labels(x, c.distance_threshold, c.max_k, c.min_cluster_size)
    if c.method == "agglomerative":
        return ward
    kmeans = cluster_select.kmeans_silhouette_labels(x, c.max_k, c.min_silhouette, c.seed)
    if c.method == "kmeans":
        return kmeans
    mean, comps = fit_pca(x, pca_dims(len(x), c))
    gmm_k = select_gmm((x - mean) @ comps.T, c)[0].n_components
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
