"""How many clusters a pet has, and which image goes where: the methods besides the mixture.

All work on L2-normalised embeddings [n, d] and return raw labels 0..k-1 (no outliers yet;
`clustering` marks those afterwards, the same way for every method):

- `ward_labels`: agglomerative clustering with Ward linkage, cut where a merge would cost
  more than `distance_threshold` (scipy's Ward height, sqrt(2 n_a n_b / (n_a + n_b)) times
  the distance between the two centroids). The default, chosen on real photos by
  `benchmarks/cluster_pets.py` (see docs/clusters.md for the table).
- `kmeans_silhouette_labels`: k-means for k = 2..max_k, the k with the best cosine
  silhouette; one cluster when no k reaches `min_silhouette`.
- `consensus_labels`: the median of the counts that Ward, k-means + silhouette and the BIC
  mixture pick, cut from the Ward tree.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from ml_platform.learning.ann_index import FloatArray
from ml_platform.learning.cluster_store import IntArray

KMEANS_INITS = 4
MIN_MAD = 1e-3


def ward_tree(x: FloatArray) -> NDArray[np.float64]:
    """The Ward linkage matrix of the rows of `x` (scipy's format)."""
    return np.asarray(linkage(x.astype(np.float64), method="ward"))


def ward_labels(x: FloatArray, threshold: float, max_k: int, min_size: int) -> IntArray:
    """Ward tree cut at `threshold`, but never into more than `max_k` clusters of at least
    `min_size` images (smaller groups are left for the outlier step to place)."""
    if len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    tree = ward_tree(x)
    labels = _relabel(fcluster(tree, threshold, criterion="distance"))
    while _n_big(labels, min_size) > max_k:
        labels = _relabel(fcluster(tree, int(labels.max()), criterion="maxclust"))
    return labels


def ward_cut(x: FloatArray, k: int) -> IntArray:
    """The Ward tree of `x` cut into `k` clusters."""
    if k <= 1 or len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    return _relabel(fcluster(ward_tree(x), k, criterion="maxclust"))


def kmeans_silhouette_labels(
    x: FloatArray, max_k: int, min_silhouette: float, seed: int
) -> IntArray:
    """k-means labels for the k in 2..max_k with the best cosine silhouette; all zeros when
    none reaches `min_silhouette` (the silhouette cannot score one cluster)."""
    best_score, best = min_silhouette, np.zeros(len(x), dtype=np.int64)
    centred = x - x.mean(axis=0)
    for k in range(2, min(max_k, len(x) - 1) + 1):
        labels = KMeans(k, n_init=KMEANS_INITS, random_state=seed).fit_predict(centred)
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(centred, labels, metric="cosine"))
        if score > best_score:
            best_score, best = score, labels.astype(np.int64)
    return best


def consensus_labels(x: FloatArray, counts: list[int]) -> IntArray:
    """The Ward tree cut at the median of the counts the methods chose (rounded down)."""
    k = int(np.floor(np.median(counts)))
    return ward_cut(x, k)


def place(x: FloatArray, labels: IntArray, min_size: int, outlier_mads: float) -> IntArray:
    """Final labels: every image joins the cluster whose centroid it is most similar to,
    among clusters of at least `min_size` (raw label -1: not clustered yet, e.g. isolated);
    it is an outlier (-1) only when that best cosine is more than `outlier_mads` median
    absolute deviations under the median best cosine of the pet (0 disables). Clusters are
    numbered 0, 1, ... by decreasing size."""
    sizes = np.bincount(labels[labels >= 0], minlength=1)
    big = np.flatnonzero(sizes >= min_size)
    if len(big) == 0:
        return np.zeros(len(x), dtype=np.int64)
    centroids = np.stack([x[labels == c].mean(axis=0) for c in big])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sims = x @ centroids.T
    nearest, best = sims.argmax(axis=1), sims.max(axis=1)
    placed = np.where(best >= _limit(best, outlier_mads), nearest, -1)
    counts = np.bincount(placed[placed >= 0], minlength=len(big))
    rank = np.empty(len(big), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(big))
    return np.where(placed >= 0, rank[np.maximum(placed, 0)], -1).astype(np.int64)


def _limit(best: NDArray[np.floating], mads: float) -> float:
    if mads <= 0.0:
        return -np.inf
    median = float(np.median(best))
    return median - mads * max(float(np.median(np.abs(best - median))), MIN_MAD)


def _n_big(labels: IntArray, min_size: int) -> int:
    return int(np.sum(np.bincount(labels[labels >= 0]) >= min_size)) if len(labels) else 0


def _relabel(raw: NDArray[np.integer]) -> IntArray:
    """Labels 0..c-1 in order of first appearance."""
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def count_big(labels: IntArray, min_size: int) -> int:
    """Clusters with at least `min_size` members."""
    return _n_big(labels, min_size)
