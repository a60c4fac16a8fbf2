"""Per-image quality (computed once) and per-pet hero sets, as read by the clusters API."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ml_platform.learning.hero import QualityParts
from ml_platform.store.manifests import write_json_atomic
from ml_platform.store.tables import write_parquet_atomic


def write_quality(path: Path, quality: dict[int, QualityParts]) -> None:
    rows = [{"image_id": i, **asdict(q)} for i, q in sorted(quality.items())]
    write_parquet_atomic(pd.DataFrame(rows), path)


def read_quality(path: Path) -> dict[int, QualityParts]:
    if not path.is_file():
        return {}
    out = {}
    for row in pd.read_parquet(path).to_dict("records"):
        image_id = int(row.pop("image_id"))
        out[image_id] = QualityParts(**{str(k): float(v) for k, v in row.items()})
    return out


def heroes_path(root: Path, pet_id: int) -> Path:
    return root / f"pet_{pet_id}.json"


def write_heroes(root: Path, pet_id: int, payload: dict[str, Any]) -> None:
    write_json_atomic(heroes_path(root, pet_id), payload)


def read_heroes(root: Path, pet_id: int) -> dict[str, Any] | None:
    path = heroes_path(root, pet_id)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
