"""The image catalog: one Parquet object per ingestion batch (`image_catalog`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.store.layout import Layout

CATALOG_COLUMNS = [
    "image_id", "status", "error", "sha256", "path", "width", "height", "captured_at",
    "created_at", "pet_id", "collection_ids", "rejected_collection_ids", "url", "extra",
]  # fmt: skip


def catalog_frame(results: Sequence[IngestedImage]) -> pd.DataFrame:
    rows = [
        {
            "image_id": r.image.id,
            "status": r.status.value,
            "error": r.error,
            "sha256": r.sha256,
            "path": r.path,
            "width": r.width,
            "height": r.height,
            "captured_at": r.captured_at.isoformat() if r.captured_at else None,
            "created_at": r.image.created_at.isoformat(),
            "pet_id": r.image.pet_id,
            "collection_ids": json.dumps(list(r.image.collection_ids)),
            "rejected_collection_ids": json.dumps(list(r.image.rejected_collection_ids)),
            "url": r.image.url,
            "extra": json.dumps(r.extra),
        }
        for r in results
    ]
    frame = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    return frame.astype({"pet_id": "Int64", "width": "Int64", "height": "Int64"})


def _optional_int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _optional_time(value: Any) -> datetime | None:
    return None if value is None or pd.isna(value) else datetime.fromisoformat(str(value))


def ingested_from_row(row: pd.Series) -> IngestedImage:
    image = ImageRecord(
        id=int(row["image_id"]),
        url=str(row["url"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        pet_id=_optional_int(row["pet_id"]),
        collection_ids=tuple(json.loads(row["collection_ids"])),
        rejected_collection_ids=tuple(json.loads(row["rejected_collection_ids"])),
    )
    return IngestedImage(
        image=image,
        status=IngestStatus(row["status"]),
        sha256=row["sha256"] or None,
        path=row["path"] or None,
        width=_optional_int(row["width"]),
        height=_optional_int(row["height"]),
        captured_at=_optional_time(row["captured_at"]),
        error=row["error"] or None,
        extra=json.loads(row["extra"]),
    )


def write_catalog(layout: Layout, batch: str, results: Sequence[IngestedImage]) -> None:
    table = pa.Table.from_pandas(catalog_frame(results), preserve_index=False)
    layout.store.write_parquet(layout.catalog(batch), table)


def read_catalog(layout: Layout, batch: str) -> list[IngestedImage]:
    """Every image of the batch with its outcome; MissingInputError when not ingested yet."""
    frame = layout.store.read_parquet(layout.catalog(batch)).to_pandas()
    return [ingested_from_row(row) for _, row in frame.iterrows()]
