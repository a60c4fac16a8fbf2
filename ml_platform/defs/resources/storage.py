"""Files under ML_PLATFORM_HOME: image store, manifests, ledger and Parquet outputs."""

from __future__ import annotations

from pathlib import Path

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.domain import Focus
from ml_platform.store.image_store import ImageStore
from ml_platform.store.ledger import Ledger
from ml_platform.store.manifests import ManifestStore


class StorageResource(PlatformResource):
    """Where each asset's output lives; every path derives from the platform home."""

    @property
    def data_dir(self) -> Path:
        return self.settings().data_dir

    def image_store(self) -> ImageStore:
        return ImageStore(self.settings().image_store_dir)

    def ledger(self) -> Ledger:
        return Ledger(self.data_dir / "ledger.sqlite")

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

    def clusters_dir(self, focus: Focus) -> Path:
        return self.data_dir / "clusters" / focus.key

    def heroes_dir(self) -> Path:
        return self.data_dir / "heroes"

    def ann_index_path(self, focus: Focus) -> Path:
        return self.data_dir / "ann" / f"{focus.key}.faiss"
