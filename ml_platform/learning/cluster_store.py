"""A pet's clusters as records: `PetClusters` with its `ClusterModel`, enough to assign new
images without refitting. `ml_platform.learning.clustering` computes them; their persistence
lives in `ml_platform.store.clusters` (this module does no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.ann_index import FloatArray, l2_normalise

IntArray = NDArray[np.int64]
ClusterMethod = Literal["agglomerative", "kmeans", "consensus", "gmm", "hdbscan"]


@dataclass(frozen=True, eq=False)
class ClusterModel:
    """What assigning new images needs, no refit: the PCA, one diagonal Gaussian per mixture
    component in PCA space, each component's cluster label (-1: dissolved into outliers) and
    the squared Mahalanobis distance beyond which an image is an outlier of its component.
    Arrays are read-only by convention."""

    pca_mean: FloatArray
    pca_components: FloatArray
    means: FloatArray
    variances: FloatArray
    weights: FloatArray
    component_labels: IntArray
    max_distance_sq: float

    def assign(self, embeddings: NDArray[np.floating]) -> IntArray:
        """Cluster labels (-1 = outlier) for new embeddings [n, d]; normalised here."""
        x = l2_normalise(embeddings)
        if x.shape[1] != len(self.pca_mean):
            raise ValueError(f"embeddings have d={x.shape[1]}; this model has {len(self.pca_mean)}")
        if len(self.weights) == 0:
            return np.full(len(x), -1, dtype=np.int64)
        component, dist_sq = self.score_projected((x - self.pca_mean) @ self.pca_components.T)
        return np.where(dist_sq <= self.max_distance_sq, self.component_labels[component], -1)

    def score_projected(self, y: NDArray[np.floating]) -> tuple[IntArray, NDArray[np.float64]]:
        """Most probable component of PCA-space points [n, p] and their squared Mahalanobis
        distance to it."""
        inv = 1.0 / self.variances.astype(np.float64)
        mu = self.means.astype(np.float64)
        yy = y.astype(np.float64)
        dist_sq = (yy**2) @ inv.T - 2.0 * yy @ (mu * inv).T + np.sum(mu**2 * inv, axis=1)
        log_norm = np.sum(np.log(2.0 * np.pi / inv), axis=1)
        log_p = -0.5 * (dist_sq + log_norm) + np.log(self.weights.astype(np.float64))
        component = log_p.argmax(axis=1)
        return component.astype(np.int64), dist_sq[np.arange(len(yy)), component]

    def with_labels(self, component_labels: IntArray, max_distance_sq: float) -> ClusterModel:
        return replace(self, component_labels=component_labels, max_distance_sq=max_distance_sq)

    @classmethod
    def from_members(
        cls,
        mean: FloatArray,
        comps: FloatArray,
        y: NDArray[np.floating],
        labels: IntArray,
        reg: float,
    ) -> ClusterModel:
        """One Gaussian per cluster label 0..c-1 fitted to its members; no outlier limit."""
        c = int(labels.max()) + 1 if np.any(labels >= 0) else 0
        groups = [y[labels == lab] for lab in range(c)]
        shape = (c, y.shape[1])
        return cls(
            pca_mean=mean,
            pca_components=comps,
            means=np.array([g.mean(0) for g in groups], dtype=np.float32).reshape(shape),
            variances=np.array([g.var(0) + reg for g in groups], dtype=np.float32).reshape(shape),
            weights=(np.array([len(g) for g in groups]) / max(1, len(y))).astype(np.float32),
            component_labels=np.arange(c, dtype=np.int64),
            max_distance_sq=np.inf,
        )


@dataclass(frozen=True, eq=False)
class Cluster:
    """One cluster: its label, member count and unit-length centroid in embedding space."""

    label: int
    size: int
    centroid: FloatArray


@dataclass(frozen=True, eq=False)
class PetClusters:
    """The clusters of one pet's images. `labels[i]` belongs to `image_ids[i]`; -1 = outlier.

    `k` is the number of clusters; `n_components` the mixture size BIC chose (GMM) before
    components with fewer than `min_cluster_size` members were dissolved into outliers
    (a lone far-away image often gets its own component), else `k`. `bic` is None for
    HDBSCAN and tiny pets; `silhouette` (cosine, outliers excluded) is None when it
    is undefined (fewer than two clusters).
    """

    pet_id: int | None
    image_ids: tuple[int, ...]
    labels: tuple[int, ...]
    clusters: tuple[Cluster, ...]
    n_components: int
    bic: float | None
    silhouette: float | None
    method: ClusterMethod
    model: ClusterModel

    @property
    def k(self) -> int:
        """The number of clusters (outliers are not one)."""
        return len(self.clusters)

    @property
    def labels_by_image(self) -> dict[int, int]:
        return dict(zip(self.image_ids, self.labels, strict=True))

    @property
    def n_outliers(self) -> int:
        return sum(1 for label in self.labels if label < 0)

    def members(self, label: int) -> tuple[int, ...]:
        """Image ids labelled `label` (-1 for the outliers)."""
        return tuple(i for i, lab in zip(self.image_ids, self.labels, strict=True) if lab == label)

    def cluster(self, label: int) -> Cluster:
        for cluster in self.clusters:
            if cluster.label == label:
                return cluster
        known = [c.label for c in self.clusters]
        raise KeyError(f"pet {self.pet_id} has no cluster {label}; known: {known}")
