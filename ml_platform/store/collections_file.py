"""The parsed collections, as written by `crawlr_collections` and read downstream."""

from __future__ import annotations

import json
from pathlib import Path

from ml_platform.domain import Collection, Focus
from ml_platform.store.manifests import write_json_atomic


def write_collections(path: Path, collections: list[Collection]) -> None:
    payload = [
        {
            "id": c.id,
            "name": c.name,
            "focus": c.focus.key if c.focus else None,
            "focus_id": c.focus_id,
            "unusable_reason": c.unusable_reason,
        }
        for c in collections
    ]
    write_json_atomic(path, payload)


def read_collections(path: Path) -> list[Collection]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: materialize crawlr_collections first (ml-platform run)"
        )
    return [
        Collection(
            id=item["id"],
            name=item["name"],
            focus=Focus.from_key(item["focus"]) if item["focus"] else None,
            unusable_reason=item["unusable_reason"],
            focus_id=item["focus_id"],
        )
        for item in json.loads(path.read_text(encoding="utf-8"))
    ]


def foci_in_use(collections: list[Collection]) -> list[Focus]:
    """The distinct foci of usable collections, sorted."""
    return sorted({c.focus for c in collections if c.usable and c.focus is not None})
