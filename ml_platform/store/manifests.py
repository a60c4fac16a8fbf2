"""Batch manifests: the images of one ingestion batch, written before its partition exists."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ml_platform.crawlr.contract import image_to_json, parse_image
from ml_platform.domain import ImageRecord


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


class ManifestStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def write(self, key: str, images: tuple[ImageRecord, ...], malformed: tuple[str, ...]) -> None:
        payload = {
            "key": key,
            "images": [image_to_json(im) for im in images],
            "malformed": list(malformed),
        }
        write_json_atomic(self.path(key), payload)

    def read(self, key: str) -> tuple[list[ImageRecord], list[str]]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(
                f"no manifest for ingestion batch {key!r} at {path}; batches are created by the "
                "new_images sensor or `ml-platform run`, not by hand"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        return [parse_image(item) for item in data["images"]], list(data.get("malformed", []))
