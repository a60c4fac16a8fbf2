"""Per-batch thumbnail tables: one row per image, the JPEG bytes or the reason there are none."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from ml_platform.store.layout import Layout

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


def write_thumbnails(layout: Layout, batch: str, rows: Sequence[Thumbnail]) -> None:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    layout.store.write_parquet(layout.thumbnails(batch), pa.Table.from_pandas(frame))


def has_thumbnails(layout: Layout, batch: str) -> bool:
    return layout.store.exists(layout.thumbnails(batch))


def read_thumbnails(
    layout: Layout, batch: str, ids: Collection[int] | None = None
) -> dict[int, Thumbnail]:
    """The batch's thumbnails (only `ids` when given); MissingInputError when not made yet."""
    filters = None if ids is None else [("image_id", "in", sorted(set(ids)))]
    table = layout.store.read_parquet(layout.thumbnails(batch), filters=filters)
    return {int(r["image_id"]): _row(r) for r in table.to_pylist()}


def _row(r: Mapping[Hashable, Any]) -> Thumbnail:
    data, error, sha = r["data"], r["error"], r["sha256"]
    return Thumbnail(
        image_id=int(r["image_id"]), sha256=sha if isinstance(sha, str) else None,
        width=int(r["width"]), height=int(r["height"]),
        data=bytes(data) if isinstance(data, bytes | bytearray) else None,
        error=error if isinstance(error, str) else None,
    )  # fmt: skip
