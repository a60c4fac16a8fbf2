"""Batch manifests: the images of one ingestion batch, written before its partition exists."""

from __future__ import annotations

from ml_platform.crawlr.contract import image_to_json, parse_image
from ml_platform.domain import ImageRecord
from ml_platform.store.blobs import Key, Store


class ManifestStore:
    def __init__(self, store: Store, prefix: str, made_by: str) -> None:
        self.store = store
        self.prefix = prefix
        self.made_by = made_by

    def key(self, batch: str) -> Key:
        return Key(f"{self.prefix}/{batch}.json", self.made_by)

    def write(self, key: str, images: tuple[ImageRecord, ...], malformed: tuple[str, ...]) -> None:
        payload = {
            "key": key,
            "images": [image_to_json(im) for im in images],
            "malformed": list(malformed),
        }
        self.store.write_json(self.key(key), payload)

    def read(self, key: str) -> tuple[list[ImageRecord], list[str]]:
        """The batch's images and malformed feed entries; batches are created by the
        new_images sensor or `ml-platform run`, never by hand."""
        data = self.store.read_json(self.key(key))
        return [parse_image(item) for item in data["images"]], list(data.get("malformed", []))
