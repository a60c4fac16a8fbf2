"""The platform's stored state, as a thin resource over `ml_platform.store.layout.Layout`:
asset outputs in the Store (ML_PLATFORM_STORE_URL) and the metadata database."""

from __future__ import annotations

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.store.layout import Layout
from ml_platform.store.manifests import ManifestStore
from ml_platform.store.metadata import MetadataDB


class StorageResource(PlatformResource):
    """Where each asset's output lives (ML_PLATFORM_STORE_URL, default: home); assets and
    services work on the `Layout` it returns."""

    def layout(self) -> Layout:
        return Layout.for_settings(self.settings())

    def metadata(self) -> MetadataDB:
        return self.layout().metadata()

    def manifests(self) -> ManifestStore:
        return self.layout().manifests()
