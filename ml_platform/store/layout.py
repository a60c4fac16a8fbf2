"""Where each asset's output lives: keys in the Store, derived from Settings (no Dagster).

```
data/batches/<batch>.json                       batch manifests (batch planning)
data/collections.json                           crawlr_collections
data/catalog/<batch>.parquet                    image_catalog
data/detections/<batch>.parquet                 detections
data/embeddings/<focus>/<batch>.parquet         embeddings, one file per focus
data/quality/<batch>.parquet                    pet_heroes (image quality, measured once)
data/thumbnails/<batch>.parquet                 thumbnails
data/drift/<batch>.parquet                      batch_drift (one row per test)
data/clusters/<focus>/pet_<id>/v<version>-...   pet_clusters: one new object per save
data/heroes/pet_<id>/v<cluster version>-...     pet_heroes: one new object per write
data/ann/<focus>/<batch>.faiss                  similarity_index: one shard per batch
data/datasets/<name>/versions/<version>.json    datasets: one object per dataset version
data/datasets/<name>/latest.json                datasets: the newest version, replaced whole
data/datasets/<name>/suggestions.json           label_suggestions
images/<sha[:2]>/<sha><ext>                     image_catalog: content-addressed bytes
```
Per-batch objects are written only by their own partition's run; objects shared by many
batches (a pet's clusters and heroes) get a new versioned object per write instead of being
rewritten in place. Platform metadata (batch assignments, attempts, claims) is in the SQL
database of ML_PLATFORM_METADATA_URL, not in the Store.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ml_platform.domain import Focus
from ml_platform.settings import Settings
from ml_platform.store.blobs import Key, Store
from ml_platform.store.image_store import ImageStore
from ml_platform.store.manifests import ManifestStore
from ml_platform.store.metadata import MetadataDB

DATA = "data"
PLANNING = "batch planning (the new_images sensor or `ml-platform run`)"


@functools.cache
def metadata_db(url: str) -> MetadataDB:
    """One engine (and connection pool) per database URL per process."""
    return MetadataDB(url)


def _asset(name: str, batch: str | None = None) -> str:
    return f"the {name} asset" + (f" (partition {batch})" if batch else "")


def _dataset(name: str) -> str:
    return f"the `datasets` asset (partition {name}; `ml-platform finetune` runs it)"


@dataclass(frozen=True)
class Layout:
    """Keys of every stored output, over one Store; the metadata database beside it."""

    store: Store
    metadata_url: str

    @classmethod
    def for_settings(cls, settings: Settings) -> Layout:
        return cls(Store.for_settings(settings), settings.metadata_db_url)

    def metadata(self) -> MetadataDB:
        return metadata_db(self.metadata_url)

    def manifests(self) -> ManifestStore:
        return ManifestStore(self.store, f"{DATA}/batches", PLANNING)

    def images(self) -> ImageStore:
        return ImageStore(self.store, "images")

    def collections(self) -> Key:
        return Key(f"{DATA}/collections.json", _asset("crawlr_collections"))

    def catalog(self, batch: str) -> Key:
        return Key(f"{DATA}/catalog/{batch}.parquet", _asset("image_catalog", batch))

    def detections(self, batch: str) -> Key:
        return Key(f"{DATA}/detections/{batch}.parquet", _asset("detections", batch))

    def embeddings(self, focus: Focus, batch: str) -> Key:
        return Key(f"{DATA}/embeddings/{focus.key}/{batch}.parquet", _asset("embeddings", batch))

    def embedded_foci(self, batch: str) -> list[Focus]:
        """The foci that have an embeddings object for `batch`, sorted."""
        keys = self.store.children(f"{DATA}/embeddings")
        foci = [Focus.from_key(k) for k in keys]
        return [f for f in foci if self.store.exists(self.embeddings(f, batch))]

    def thumbnails(self, batch: str) -> Key:
        return Key(f"{DATA}/thumbnails/{batch}.parquet", _asset("thumbnails", batch))

    def drift(self, batch: str) -> Key:
        return Key(f"{DATA}/drift/{batch}.parquet", _asset("batch_drift", batch))

    def quality(self, batch: str) -> Key:
        return Key(f"{DATA}/quality/{batch}.parquet", _asset("pet_heroes", batch))

    def clusters_prefix(self, focus: Focus) -> str:
        return f"{DATA}/clusters/{focus.key}"

    def pet_clusters_prefix(self, focus: Focus, pet_id: int) -> str:
        return f"{self.clusters_prefix(focus)}/pet_{int(pet_id)}"

    def heroes_prefix(self, pet_id: int) -> str:
        return f"{DATA}/heroes/pet_{int(pet_id)}"

    def dataset_version(self, name: str, version: str) -> Key:
        return Key(f"{DATA}/datasets/{name}/versions/{version}.json", _dataset(name))

    def dataset_latest(self, name: str) -> Key:
        """The newest version of a dataset, replaced whole by each new version."""
        return Key(f"{DATA}/datasets/{name}/latest.json", _dataset(name))

    def label_suggestions(self, name: str) -> Key:
        made_by = f"the label_suggestions asset (partition {name}; `ml-platform labels suggest`)"
        return Key(f"{DATA}/datasets/{name}/suggestions.json", made_by)

    def ann_prefix(self, focus: Focus) -> str:
        return f"{DATA}/ann/{focus.key}"

    def ann_shard(self, focus: Focus, batch: str) -> Key:
        return Key(f"{self.ann_prefix(focus)}/{batch}.faiss", _asset("similarity_index", batch))
