"""`ClusterConfig`: how one pet is clustered (the knobs `pet_clusters` shows in the launchpad)."""

from __future__ import annotations

from dataclasses import dataclass

from ml_platform.learning.cluster_store import ClusterMethod

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
