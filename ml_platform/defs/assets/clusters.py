"""`pet_clusters` and `pet_heroes`: per-pet clusters and ranked hero images, incremental.

Both are partitioned by ingestion batch: materializing a batch re-clusters only the pets
that batch touches, reading only the batches that hold those pets (the metadata index). The
planner sensor requests them when a batch's embeddings are newer than its clusters.
"""

from datetime import UTC, datetime

import dagster as dg

from ml_platform.defs.assets.cluster_launchpad import ClusterAssetConfig, HeroConfig
from ml_platform.defs.assets.cluster_pictures import PetHeroes, hero_sheet_entries
from ml_platform.defs.assets.cluster_results import cluster_metadata, hero_inputs
from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus, IngestStatus
from ml_platform.learning.clustering import recluster_touched
from ml_platform.learning.hero import hero_sets
from ml_platform.services.pets import PetVectors, candidate, heroes_payload, pet_vectors, pets_of
from ml_platform.services.training_data import load_focus, load_images
from ml_platform.store.clusters import has_pet_clusters, load_pet_clusters, save_pet_clusters
from ml_platform.store.layout import Layout
from ml_platform.store.pet_tables import write_heroes
from ml_platform.store.tables import read_catalog


def _membership_changed(layout: Layout, focus: Focus, pet: int, vectors: PetVectors) -> bool:
    """False when the stored model already covers exactly the pet's current images (e.g. a
    re-run of the batch after an unrelated focus was embedded): nothing to recompute."""
    if not has_pet_clusters(layout, focus, pet):
        return True
    stored = load_pet_clusters(layout, focus, pet).clusters
    return set(stored.image_ids) != set(vectors.get(pet, ([], None))[0])


def _touched(layout: Layout, key: str) -> set[int]:
    batch = read_catalog(layout, key)
    return pets_of([e for e in batch if e.status is IngestStatus.OK])


@dg.asset(
    group_name="clusters",
    partitions_def=ingestion_batches,
    deps=["embeddings"],
    kinds={"scikitlearn", "numpy"},
)
def pet_clusters(
    context: dg.AssetExecutionContext, config: ClusterAssetConfig, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Cluster each pet touched by this batch on all its images' embeddings of the clustering
    focus (agglomerative by default; see `ClusterConfig`); untouched pets are not loaded. The
    metadata draws each re-clustered pet's 2-D projection coloured by cluster."""
    focus, layout = Focus.from_key(storage.settings().cluster_focus), storage.layout()
    touched = _touched(layout, context.partition_key)
    batches = layout.metadata().batches_of_pets(touched)  # cost follows the pets, not history
    embedded = load_focus(layout, focus, batches)
    vectors = pet_vectors(load_images(layout, batches), embedded, touched)
    changed = {p: v for p, v in vectors.items() if _membership_changed(layout, focus, p, vectors)}
    updated = recluster_touched({}, changed, set(changed), config.cluster_config())
    versions = {p: save_pet_clusters(layout, focus, p, c).version for p, c in updated.items()}
    context.log.info("re-clustered %d pets: %s", len(updated), sorted(updated))
    return dg.MaterializeResult(
        metadata=cluster_metadata(updated, vectors, versions, focus, embedded.weights.value)
    )


@dg.asset(
    group_name="clusters",
    partitions_def=ingestion_batches,
    deps=["pet_clusters", "detections", "image_catalog", "thumbnails"],
    kinds={"python", "json"},
)
def pet_heroes(
    context: dg.AssetExecutionContext, config: HeroConfig, storage: StorageResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Top images per cluster of each touched pet by a composite score (sharpness, exposure,
    resolution, prominence, centrality, recency), near-duplicates suppressed; a contact sheet
    of each pet's heroes (thumbnails with scores) in the metadata."""
    focus, layout = Focus.from_key(storage.settings().cluster_focus), storage.layout()
    touched = _touched(layout, context.partition_key)
    inputs = hero_inputs(layout, context.partition_key, touched)
    batches = layout.metadata().batches_of_pets(touched)
    embedded = load_focus(layout, focus, batches)
    vectors = pet_vectors(list(inputs.images.values()), embedded, touched)
    now, chosen, drawn = datetime.now(UTC), {}, dict[int, PetHeroes]()
    for pet, (ids, matrix) in vectors.items():
        stored = load_pet_clusters(layout, focus, pet)
        candidates = {i: candidate(i, v, inputs) for i, v in zip(ids, matrix, strict=True)}
        heroes = hero_sets(
            stored.clusters, candidates, config.score_weights(), config.top_n,
            config.duplicate_threshold, now, config.quality_floor(),
        )  # fmt: skip
        payload = heroes_payload(
            stored.clusters, heroes, focus.key, stored.stored.version, now, embedded.weights.value
        )
        write_heroes(layout, pet, stored.stored.version, payload)
        drawn[pet] = (stored.clusters, heroes)
        chosen[str(pet)] = {
            str(k): [(p.image_id, round(p.score, 3)) for p in v] for k, v in heroes.items()
        }
    return dg.MaterializeResult(
        metadata={  # the contact sheets first: the top of the metadata table, one click each
            **hero_sheet_entries(layout, batches, drawn, embedded.weights.value),
            "pets": len(chosen),
            "heroes (image id, score) per cluster": dg.MetadataValue.json(chosen),
            "weights": embedded.weights.value,
        }
    )
