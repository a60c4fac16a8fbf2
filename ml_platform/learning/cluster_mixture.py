"""The mixture side of clustering: PCA, the diagonal GMM chosen by BIC, HDBSCAN, tiny pets.

`gmm` and `hdbscan` work in a PCA space of at most `pca_dims` dimensions; every method's
saved `ClusterModel` is one diagonal Gaussian per component there, so new images are
assigned without refitting. An image is an outlier when its squared Mahalanobis distance to
its component is beyond `distance_limit` (a chi-square quantile).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2
from sklearn.cluster import HDBSCAN
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from ml_platform.learning.ann_index import FloatArray
from ml_platform.learning.cluster_config import ClusterConfig
from ml_platform.learning.cluster_store import ClusterModel, IntArray

REG_COVAR = 1e-6
# Stop the k scan once BIC has not improved for this many k in a row (BIC is U-shaped in k).
BIC_PATIENCE = 3


def pca_dims(n: int, config: ClusterConfig) -> int:
    """At most `pca_dims`, and at most one dimension per `images_per_dim` images (at least 2):
    with more, BIC rarely affords a second diagonal component for a small pet."""
    return min(config.pca_dims, max(2, n // config.images_per_dim))


def fit_pca(x: FloatArray, dims: int) -> tuple[FloatArray, FloatArray]:
    """Mean and the top `min(dims, n - 1, d)` principal axes (rows) of `x`."""
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1], dtype=np.float32)
    p = min(dims, len(x) - 1, x.shape[1])
    if p <= 0:
        return mean, np.zeros((0, x.shape[1]), dtype=np.float32)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, np.ascontiguousarray(vt[:p], dtype=np.float32)


def select_gmm(y: NDArray[np.floating], config: ClusterConfig) -> tuple[GaussianMixture, float]:
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


def gmm_model(
    y: NDArray[np.floating],
    gmm: GaussianMixture,
    mean: FloatArray,
    comps: FloatArray,
    config: ClusterConfig,
) -> ClusterModel:
    """The fitted mixture as a model. Outliers: images too far from their component (see
    `distance_limit`) and members of components left with fewer than `min_cluster_size`."""
    model = ClusterModel(
        pca_mean=mean,
        pca_components=comps,
        means=gmm.means_.astype(np.float32),
        variances=gmm.covariances_.astype(np.float32),
        weights=gmm.weights_.astype(np.float32),
        component_labels=np.arange(gmm.n_components, dtype=np.int64),
        max_distance_sq=np.inf,
    )
    limit = distance_limit(y.shape[1], config.outlier_quantile)
    component, dist_sq = model.score_projected(y)
    counts = np.bincount(component[dist_sq <= limit], minlength=gmm.n_components)
    return model.with_labels(rank_components(counts, config.min_cluster_size), limit)


def hdbscan_model(
    y: NDArray[np.floating], mean: FloatArray, comps: FloatArray, config: ClusterConfig
) -> tuple[IntArray, ClusterModel]:
    raw = HDBSCAN(
        min_cluster_size=max(2, config.min_cluster_size), allow_single_cluster=True, copy=True
    ).fit_predict(y)
    counts = np.bincount(raw[raw >= 0], minlength=max(1, int(raw.max()) + 1))
    ranks = rank_components(counts, config.min_cluster_size)
    labels = np.where(raw >= 0, ranks[np.maximum(raw, 0)], -1).astype(np.int64)
    model = ClusterModel.from_members(mean, comps, y, labels, REG_COVAR)
    limit = distance_limit(y.shape[1], config.outlier_quantile)
    return labels, model.with_labels(model.component_labels, limit)


def tiny_model(x: FloatArray, config: ClusterConfig) -> tuple[IntArray, ClusterModel]:
    """Too few images to split: one cluster (new images always join it) or all outliers."""
    mean, comps = fit_pca(x, config.pca_dims)
    fill = 0 if len(x) >= config.min_cluster_size else -1
    labels = np.full(len(x), fill, dtype=np.int64)
    y = (x - mean) @ comps.T
    return labels, ClusterModel.from_members(mean, comps, y, labels, REG_COVAR)


def distance_limit(dims: int, quantile: float) -> float:
    """Squared Mahalanobis distance a Gaussian point exceeds with probability `quantile`."""
    if quantile <= 0.0 or dims == 0:
        return float(np.inf)
    return float(chi2.isf(quantile, dims))


def rank_components(counts: IntArray, min_size: int) -> IntArray:
    """Label components 0, 1, ... by decreasing size; those under `min_size` get -1."""
    labels = np.full(len(counts), -1, dtype=np.int64)
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] >= min_size]
    labels[order] = np.arange(len(order))
    return labels
