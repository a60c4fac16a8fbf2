"""Per-batch drift tables (`data/drift/<batch>.parquet`, the `batch_drift` asset): one row per
test of the batch, the focus's embedding test and each collection's predicted-positive share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from ml_platform.store.layout import Layout
from ml_platform.store.metadata import MetadataDB, batches


@dataclass(frozen=True)
class DriftRow:
    """One test of one batch. `collection_id` None: the focus's embeddings against the
    champions' training embeddings (`statistic`: squared MMD); else that collection's share of
    the batch its champion predicts positive (`statistic`: batch share - training share).
    `p_value` is NaN and `reason` says why when the test could not run."""

    batch: str
    focus: str
    collection_id: int | None
    champion_version: str | None
    statistic: float
    p_value: float
    level: float  # the p-value under which this test calls the batch drifted
    n_batch: int
    n_reference: int
    drifted: bool
    reason: str


COLUMNS = [f.name for f in fields(DriftRow)]
FLOATS = ("statistic", "p_value", "level")


def write_drift(layout: Layout, batch: str, rows: Sequence[DriftRow]) -> None:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    frame["collection_id"] = frame["collection_id"].astype("Int64")
    layout.store.write_parquet(layout.drift(batch), pa.Table.from_pandas(frame))


def read_drift(layout: Layout, batch: str) -> list[DriftRow]:
    """The batch's rows; [] when the batch has no drift table yet."""
    if not layout.store.exists(layout.drift(batch)):
        return []
    records = layout.store.read_parquet(layout.drift(batch)).select(COLUMNS).to_pylist()
    return [DriftRow(**{**r, **_floats(r)}) for r in records]


def _floats(record: dict[str, object]) -> dict[str, float]:
    """Parquet keeps a NaN figure (a test that did not run) as null: back to NaN."""
    return {k: math.nan if record[k] is None else float(record[k]) for k in FLOATS}  # type: ignore[arg-type]


def batches_registered_before(db: MetadataDB, at: datetime) -> list[str]:
    """The batches registered before `at`, oldest first (a champion created at `at` could
    have trained on their images)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    query = (
        sa.select(batches.c.batch_key, batches.c.registered_at)
        .order_by(batches.c.registered_at, batches.c.batch_key)
    )  # fmt: skip
    with db.transaction() as conn:
        rows = list(conn.execute(query))
    return [str(key) for key, registered in rows if _aware(registered) < at]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
