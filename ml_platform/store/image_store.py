"""A content-addressed store of original image bytes: images/<sha[:2]>/<sha><ext>.

The image catalog's `path` column holds the key (``images/ab/ab12....jpg``) relative to the
Store root, so a catalog stays valid when the store moves (another home, S3).
"""

from __future__ import annotations

import hashlib

from ml_platform.store.blobs import Key, Store

EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "HEIF": ".heic",
    "AVIF": ".avif",
}
MADE_BY = "the image_catalog asset (ingestion of the image's batch)"


class ImageStore:
    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def key_for(self, sha256: str, image_format: str | None) -> Key:
        ext = EXTENSIONS.get(image_format or "", ".img")
        return Key(f"{self.prefix}/{sha256[:2]}/{sha256}{ext}", MADE_BY)

    def put(self, data: bytes, image_format: str | None) -> tuple[str, str]:
        """Store `data` once (atomic write); return its sha256 and key."""
        sha = hashlib.sha256(data).hexdigest()
        key = self.key_for(sha, image_format)
        if not self.store.exists(key):
            self.store.write_bytes(key, data)
        return sha, key.path

    def key_of(self, path: str) -> Key:
        """The key of a catalog `path`. Catalogs written before keys were used hold absolute
        paths (``<home>/images/ab/ab12....jpg``); content addressing makes their last two parts
        the key, so they still resolve after the home moved."""
        if path.startswith("/") or "://" in path:
            parts = path.rstrip("/").split("/")
            return Key(f"{self.prefix}/{parts[-2]}/{parts[-1]}", MADE_BY)
        return Key(path, MADE_BY)

    def has(self, path: str) -> bool:
        return self.store.exists(self.key_of(path))

    def read(self, path: str) -> bytes:
        """The bytes of the image at catalog `path`; MissingInputError names it when absent."""
        return self.store.read_bytes(self.key_of(path))
