"""Detections per batch: the prominent person and face box of every image, or why not."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from ml_platform.domain import Box
from ml_platform.store.layout import Layout


@dataclass(frozen=True)
class DetectionRow:
    image_id: int
    status: str  # ok | failed
    person: Box | None = None
    face: Box | None = None
    faces_found: int = 0
    person_detector: str = ""
    face_detector: str = ""
    error: str | None = None
    # Face quality (vision.faces.quality) of `face`; None: no face, or not measured
    # (written without the [faces] extra, or before quality existed).
    face_quality: float | None = None
    face_sharpness: float | None = None
    face_frontal: float | None = None


QUALITY_COLUMNS = ("face_quality", "face_sharpness", "face_frontal")


def _box_columns(prefix: str, box: Box | None) -> dict[str, float | None]:
    values = (box.x0, box.y0, box.x1, box.y1, box.score) if box else (None,) * 5
    return {
        f"{prefix}_{k}": v for k, v in zip(("x0", "y0", "x1", "y1", "score"), values, strict=True)
    }


def _box(row: Mapping[Hashable, Any], prefix: str) -> Box | None:
    x0 = row[f"{prefix}_x0"]
    if x0 is None or pd.isna(x0):
        return None
    return Box(*(float(row[f"{prefix}_{k}"]) for k in ("x0", "y0", "x1", "y1", "score")))


def _optional(row: Mapping[Hashable, Any], column: str) -> float | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else float(value)


def write_detections(layout: Layout, batch: str, rows: list[DetectionRow]) -> None:
    records = [
        {
            "image_id": r.image_id, "status": r.status, "error": r.error,
            "faces_found": r.faces_found, "person_detector": r.person_detector,
            "face_detector": r.face_detector,
            **_box_columns("person", r.person), **_box_columns("face", r.face),
            **{c: getattr(r, c) for c in QUALITY_COLUMNS},
        }
        for r in rows
    ]  # fmt: skip
    frame = pd.DataFrame.from_records(records)
    layout.store.write_parquet(layout.detections(batch), pa.Table.from_pandas(frame))


def read_detections(layout: Layout, batch: str) -> dict[int, DetectionRow]:
    """The batch's detections by image id; MissingInputError when not detected yet."""
    out = {}
    for row in layout.store.read_parquet(layout.detections(batch)).to_pylist():
        out[int(row["image_id"])] = DetectionRow(
            image_id=int(row["image_id"]),
            status=str(row["status"]),
            person=_box(row, "person"),
            face=_box(row, "face"),
            faces_found=int(row["faces_found"]),
            person_detector=str(row["person_detector"]),
            face_detector=str(row["face_detector"]),
            error=row["error"] or None,
            face_quality=_optional(row, "face_quality"),
            face_sharpness=_optional(row, "face_sharpness"),
            face_frontal=_optional(row, "face_frontal"),
        )
    return out
