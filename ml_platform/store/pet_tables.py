"""Per-image quality (one object per batch) and per-pet hero sets, as read by the clusters API.

A pet's heroes are shared by every batch with its images, so each write is a new versioned
object (`ml_platform.store.versions`) named by the cluster version it was computed from; the
API serves the newest.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from ml_platform.learning.hero import QualityParts
from ml_platform.store.blobs import Key
from ml_platform.store.layout import Layout
from ml_platform.store.versions import latest, write_version

HEROES_MADE_BY = "the pet_heroes asset (a batch with this pet's images)"


def write_quality(layout: Layout, batch: str, quality: dict[int, QualityParts]) -> None:
    rows = [{"image_id": i, **asdict(q)} for i, q in sorted(quality.items())]
    layout.store.write_parquet(layout.quality(batch), pa.Table.from_pylist(rows))


def has_quality(layout: Layout, batch: str) -> bool:
    return layout.store.exists(layout.quality(batch))


def read_quality(layout: Layout, batch: str) -> dict[int, QualityParts]:
    """The batch's measured image quality; MissingInputError when never measured."""
    out = {}
    for row in layout.store.read_parquet(layout.quality(batch)).to_pylist():
        image_id = int(row.pop("image_id"))
        out[image_id] = QualityParts(**{str(k): float(v) for k, v in row.items()})
    return out


def write_heroes(layout: Layout, pet_id: int, version: int, payload: dict[str, Any]) -> Key:
    """A new heroes object for pet `pet_id`, computed from its clusters' `version`."""
    data = json.dumps(payload, indent=1, sort_keys=True, default=str).encode("utf-8")
    prefix = layout.heroes_prefix(pet_id)
    written = write_version(
        layout.store, prefix, version, data, suffix=".json", made_by=HEROES_MADE_BY
    )
    return written.key


def newest_heroes_key(layout: Layout, pet_id: int) -> Key | None:
    """The key of the pet's newest heroes object; None when none was written."""
    found = latest(layout.store, layout.heroes_prefix(pet_id), HEROES_MADE_BY)
    return None if found is None else found.key


def read_heroes(layout: Layout, pet_id: int) -> dict[str, Any] | None:
    """The pet's newest heroes payload; None when no `pet_heroes` run covered the pet."""
    key = newest_heroes_key(layout, pet_id)
    if key is None:
        return None
    data: dict[str, Any] = layout.store.read_json(key)
    return data
