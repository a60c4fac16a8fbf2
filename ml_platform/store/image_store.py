"""A content-addressed store of original image bytes: images/<sha[:2]>/<sha><ext>."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str, image_format: str | None) -> Path:
        ext = EXTENSIONS.get(image_format or "", ".img")
        return self.root / sha256[:2] / f"{sha256}{ext}"

    def put(self, data: bytes, image_format: str | None) -> tuple[str, Path]:
        """Store `data` once (atomic write); return its sha256 and path."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha, image_format)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return sha, path
