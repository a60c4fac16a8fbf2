"""Where asset outputs live under ML_PLATFORM_HOME, and the metadata database."""

from __future__ import annotations

import functools
from pathlib import Path

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.domain import Focus
from ml_platform.store.image_store import ImageStore
from ml_platform.store.manifests import ManifestStore
from ml_platform.store.metadata import MetadataDB


@functools.cache
def metadata_db(url: str) -> MetadataDB:
    """One engine (and connection pool) per database URL per process."""
    return MetadataDB(url)


class StorageResource(PlatformResource):
    """Where each asset's output lives; every path derives from the platform home."""

    @property
    def data_dir(self) -> Path:
        return self.settings().data_dir

    def image_store(self) -> ImageStore:
        return ImageStore(self.settings().image_store_dir)

    def metadata(self) -> MetadataDB:
        return metadata_db(self.settings().metadata_db_url)

    def manifests(self) -> ManifestStore:
        return ManifestStore(self.data_dir / "batches")

    def collections_path(self) -> Path:
        return self.data_dir / "collections.json"

    def catalog_path(self, batch_key: str) -> Path:
        return self.data_dir / "catalog" / f"{batch_key}.parquet"

    def detections_path(self, batch_key: str) -> Path:
        return self.data_dir / "detections" / f"{batch_key}.parquet"

    def embeddings_path(self, focus: Focus, batch_key: str) -> Path:
        return self.data_dir / "embeddings" / focus.key / f"{batch_key}.parquet"

    def quality_path(self, batch_key: str) -> Path:
        return self.data_dir / "quality" / f"{batch_key}.parquet"

    def thumbnails_path(self, batch_key: str) -> Path:
        return self.data_dir / "thumbnails" / f"{batch_key}.parquet"

    def clusters_dir(self, focus: Focus) -> Path:
        return self.data_dir / "clusters" / focus.key

    def heroes_dir(self) -> Path:
        return self.data_dir / "heroes"

    def ann_index_path(self, focus: Focus) -> Path:
        return self.data_dir / "ann" / f"{focus.key}.faiss"
