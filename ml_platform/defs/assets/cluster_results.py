"""What the cluster assets read and return: the heroes' inputs, and the clusters' metadata."""

import dagster as dg

from ml_platform.defs.assets.cluster_pictures import projection_entries
from ml_platform.domain import Focus
from ml_platform.learning.cluster_store import PetClusters
from ml_platform.services.pets import HeroInputs, PetVectors, measure_quality
from ml_platform.services.training_data import images_by_batch
from ml_platform.store.detections_table import read_detections
from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import has_quality, read_quality, write_quality


def hero_inputs(layout: Layout, own_batch: str, pets: set[int]) -> HeroInputs:
    """Images, quality and detections of `pets`, read only from the batches holding them.
    Quality is measured once per image and stored per batch by that batch's own run only:
    images of other batches not measured yet are measured here in memory, never written into
    the other batch's object."""
    images, quality, detections, store = {}, {}, {}, layout.images()
    batches = layout.metadata().batches_of_pets(pets)  # only batches holding these pets
    for key, batch in images_by_batch(layout, sorted({*batches, own_batch})).items():
        mine = [e for e in batch if e.image.pet_id in pets]
        if not mine:
            continue
        known = read_quality(layout, key) if has_quality(layout, key) else {}
        fresh = measure_quality(store, mine, known)
        if fresh and key == own_batch:
            write_quality(layout, key, {**known, **fresh})
        quality.update({**known, **fresh})
        detections.update(read_detections(layout, key))
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
    # the pictures first: the top of the asset's metadata table, one click each
    return {**projection_entries(updated, vectors, weights), **metadata}
