"""Launchpad config and metadata of the cluster assets (kept out of the asset bodies)."""

from typing import Literal

import dagster as dg

from ml_platform.defs.assets.cluster_pictures import projection_entries
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus
from ml_platform.learning.cluster_store import PetClusters
from ml_platform.learning.clustering import ClusterConfig
from ml_platform.learning.hero import HeroFloor, HeroWeights
from ml_platform.services.pets import HeroInputs, PetVectors, measure_quality
from ml_platform.services.training_data import images_by_batch
from ml_platform.store.detections_table import read_detections
from ml_platform.store.pet_tables import read_quality, write_quality


class ClusterAssetConfig(dg.Config):  # type: ignore[misc]
    method: Literal["agglomerative", "kmeans", "consensus", "gmm", "hdbscan"] = "agglomerative"
    max_k: int = 8
    min_cluster_size: int = 3
    pca_dims: int = 32
    seed: int = 0

    def cluster_config(self) -> ClusterConfig:
        return ClusterConfig(
            method=self.method, max_k=self.max_k, min_cluster_size=self.min_cluster_size,
            pca_dims=self.pca_dims, seed=self.seed,
        )  # fmt: skip


class HeroConfig(dg.Config):  # type: ignore[misc]
    top_n: int = 3
    duplicate_threshold: float = 0.97
    sharpness: float = 1.0
    exposure: float = 0.5
    resolution: float = 0.5
    prominence: float = 1.0
    centrality: float = 1.0
    recency: float = 0.5
    recency_half_life_days: float = 365.0
    # the least pixel quality of a hero (learning.hero.HeroFloor); 0 admits everything
    min_sharpness: float = HeroFloor().sharpness
    min_exposure: float = HeroFloor().exposure
    min_megapixels: float = HeroFloor().megapixels

    def floor(self) -> HeroFloor:
        return HeroFloor(self.min_sharpness, self.min_exposure, self.min_megapixels)

    def weights(self) -> HeroWeights:
        return HeroWeights(
            self.sharpness, self.exposure, self.resolution, self.prominence, self.centrality,
            self.recency, self.recency_half_life_days,
        )  # fmt: skip


def hero_inputs(storage: StorageResource, pets: set[int]) -> HeroInputs:
    """Images, quality (measured once per image, stored per batch) and detections of `pets`."""
    images, quality, detections = {}, {}, {}
    batches = storage.metadata().batches_of_pets(pets)  # only batches holding these pets
    for key, batch in images_by_batch(storage, batches).items():
        mine = [e for e in batch if e.image.pet_id in pets]
        if not mine:
            continue
        known = read_quality(storage.quality_path(key))
        fresh = measure_quality(mine, known)
        if fresh:
            write_quality(storage.quality_path(key), {**known, **fresh})
        quality.update({**known, **fresh})
        detections.update(read_detections(storage.detections_path(key)))
        images.update({e.image.id: e for e in mine})
    return HeroInputs(images, quality, detections)


def cluster_metadata(
    updated: dict[int, PetClusters],
    vectors: PetVectors,
    versions: dict[int, int],
    focus: Focus,
    weights: str,
) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    per_pet = {
        str(pet): {
            "k": c.k, "sizes": [cl.size for cl in c.clusters], "outliers": c.n_outliers,
            "silhouette": None if c.silhouette is None else round(c.silhouette, 3),
            "version": versions[pet],
        }
        for pet, c in sorted(updated.items())
    }  # fmt: skip
    metadata: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "pets_reclustered": dg.MetadataValue.int(len(updated)),
        "clusters": dg.MetadataValue.int(sum(c.k for c in updated.values())),
        "per_pet": dg.MetadataValue.json(per_pet),
        "focus": dg.MetadataValue.text(focus.key),
        "weights": dg.MetadataValue.text(weights),
    }
    return {**metadata, **projection_entries(updated, vectors)}
