"""A pet's clusters as records, and their persistence: one ``pet_<id>.npz`` file per pet.

`PetClusters` (with its `ClusterModel`, enough to assign new images without refitting) is
what `ml_platform.learning.clustering` computes; this module defines it and stores it.
Each file holds the arrays plus a JSON ``meta`` entry with a format number, a per-pet
`version` that grows by one on every save, and the UTC `saved_at` time, so a reader can tell
that a newer model has landed. Files are written to a temporary name and renamed into
place, so a reader never sees half a file. One writer per pet at a time is assumed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ml_platform.learning.ann_index import FloatArray, l2_normalise

FORMAT = 1
IntArray = NDArray[np.int64]
ClusterMethod = Literal["agglomerative", "kmeans", "consensus", "gmm", "hdbscan"]
_FILE = re.compile(r"^pet_(-?\d+)\.npz$")
_MODEL_ARRAYS = ("pca_mean", "pca_components", "means", "variances", "weights", "component_labels")


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


@dataclass(frozen=True)
class StoreVersion:
    """Which save of a pet's clusters a file holds: `version` grows by one per save."""

    version: int
    saved_at: datetime


@dataclass(frozen=True, eq=False)
class StoredPetClusters:
    """A pet's clusters as loaded, with the version of the file they came from."""

    clusters: PetClusters
    stored: StoreVersion


def save_pet_clusters(directory: Path, pet_id: int, clusters: PetClusters) -> StoreVersion:
    """Write `clusters` as pet `pet_id`'s current model, atomically; returns the new version."""
    if clusters.pet_id is not None and clusters.pet_id != pet_id:
        raise ValueError(f"clusters of pet {clusters.pet_id} cannot be saved as pet {pet_id}")
    directory.mkdir(parents=True, exist_ok=True)
    path = _path(directory, pet_id)
    previous = stored_version(directory, pet_id) if path.exists() else None
    stored = StoreVersion((previous.version if previous else 0) + 1, datetime.now(UTC))
    arrays = _to_arrays(replace(clusters, pet_id=pet_id), stored)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return stored


def load_pet_clusters(directory: Path, pet_id: int) -> StoredPetClusters:
    path = _existing(directory, pet_id)
    with np.load(path, allow_pickle=False) as data:
        meta = _meta(data, path)
        clusters = _from_arrays({k: data[k] for k in data.files if k != "meta"}, meta)
    return StoredPetClusters(clusters, _version(meta))


def stored_version(directory: Path, pet_id: int) -> StoreVersion:
    """The version of pet `pet_id`'s file, reading only its small meta entry."""
    path = _existing(directory, pet_id)
    with np.load(path, allow_pickle=False) as data:
        return _version(_meta(data, path))


def list_pets(directory: Path) -> list[int]:
    """Pet ids with a stored model, ascending."""
    if not directory.is_dir():
        raise FileNotFoundError(f"cluster store {directory} does not exist; save a pet first")
    found = (_FILE.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def delete_pet_clusters(directory: Path, pet_id: int) -> bool:
    """Remove a pet's model (e.g. it has no images left); False when there was none."""
    path = _path(directory, pet_id)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _path(directory: Path, pet_id: int) -> Path:
    return directory / f"pet_{int(pet_id)}.npz"


def _existing(directory: Path, pet_id: int) -> Path:
    path = _path(directory, pet_id)
    if not path.is_file():
        raise FileNotFoundError(f"no clusters stored for pet {pet_id} at {path}")
    return path


def _to_arrays(c: PetClusters, stored: StoreVersion) -> dict[str, NDArray[Any]]:
    meta = {
        "format": FORMAT,
        "version": stored.version,
        "saved_at": stored.saved_at.isoformat(),
        "pet_id": c.pet_id,
        "n_components": c.n_components,
        "bic": c.bic,
        "silhouette": c.silhouette,
        "method": c.method,
        "max_distance_sq": c.model.max_distance_sq,
    }
    d = c.model.pca_mean.shape[0]
    return {
        "meta": np.array(json.dumps(meta)),
        "image_ids": np.array(c.image_ids, dtype=np.int64),
        "labels": np.array(c.labels, dtype=np.int64),
        "cluster_labels": np.array([x.label for x in c.clusters], dtype=np.int64),
        "cluster_sizes": np.array([x.size for x in c.clusters], dtype=np.int64),
        "centroids": np.array([x.centroid for x in c.clusters], dtype=np.float32).reshape(-1, d),
        **{name: getattr(c.model, name) for name in _MODEL_ARRAYS},
    }


def _from_arrays(a: dict[str, NDArray[Any]], meta: dict[str, Any]) -> PetClusters:
    model = ClusterModel(
        **{name: a[name] for name in _MODEL_ARRAYS}, max_distance_sq=meta["max_distance_sq"]
    )
    clusters = tuple(
        Cluster(int(lab), int(size), centroid)
        for lab, size, centroid in zip(
            a["cluster_labels"], a["cluster_sizes"], a["centroids"], strict=True
        )
    )
    return PetClusters(
        pet_id=meta["pet_id"],
        image_ids=tuple(int(i) for i in a["image_ids"]),
        labels=tuple(int(lab) for lab in a["labels"]),
        clusters=clusters,
        n_components=int(meta["n_components"]),
        bic=meta["bic"],
        silhouette=meta["silhouette"],
        method=meta["method"],
        model=model,
    )


def _meta(data: Any, path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(str(data["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has cluster store format {meta.get('format')}; expected {FORMAT}")
    return meta


def _version(meta: dict[str, Any]) -> StoreVersion:
    return StoreVersion(int(meta["version"]), datetime.fromisoformat(meta["saved_at"]))
