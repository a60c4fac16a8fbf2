"""Per-batch thumbnail tables: one row per image, the JPEG bytes or the reason there are none."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml_platform.store.tables import write_parquet_atomic

COLUMNS = ["image_id", "sha256", "width", "height", "data", "error"]


@dataclass(frozen=True)
class Thumbnail:
    """A small JPEG of one stored image; `data` is None and `error` says why when it failed."""

    image_id: int
    sha256: str | None
    width: int
    height: int
    data: bytes | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None


def write_thumbnails(path: Path, rows: Sequence[Thumbnail]) -> None:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    write_parquet_atomic(frame, path)


def read_thumbnails(path: Path, ids: Collection[int] | None = None) -> dict[int, Thumbnail]:
    """The batch's thumbnails (only `ids` when given); {} when the batch has none yet."""
    if not path.is_file():
        return {}
    filters = None if ids is None else [("image_id", "in", sorted(set(ids)))]
    frame = pd.read_parquet(path, filters=filters)
    return {int(r["image_id"]): _row(r) for r in frame.to_dict("records")}


def _row(r: Mapping[Hashable, Any]) -> Thumbnail:
    data, error, sha = r["data"], r["error"], r["sha256"]
    return Thumbnail(
        image_id=int(r["image_id"]), sha256=sha if isinstance(sha, str) else None,
        width=int(r["width"]), height=int(r["height"]),
        data=bytes(data) if isinstance(data, bytes | bytearray) else None,
        error=error if isinstance(error, str) else None,
    )  # fmt: skip
