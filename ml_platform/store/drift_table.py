"""Per-batch drift tables (`data/drift/<batch>.parquet`, the `batch_drift` asset): one row per
test of the batch, the focus's embedding test and each collection's predicted-positive share.

The reference each batch of a focus is compared to, a seeded sample of the training-time
embeddings, is kept once per (focus, champion versions, embedder, sample size) at
`data/drift/reference/<focus>/<digest>.parquet`: an immutable object (a new champion gives a
new key), so a batch reads its own embeddings and this sample, not the whole history.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from numpy.typing import NDArray

from ml_platform.domain import Focus
from ml_platform.store.blobs import Key
from ml_platform.store.fresh_labels import utc_aware
from ml_platform.store.layout import DATA, Layout
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
    return [str(key) for key, registered in rows if utc_aware(registered) < at]


def reference_key(focus: Focus, champions: Mapping[int, str], embedder_id: str, size: int) -> Key:
    """Where the reference sample of `focus` for these champion versions ({collection id:
    version}) lives; any change of version, embedder or sample size is another key."""
    versions = ",".join(f"{cid}:{v}" for cid, v in sorted(champions.items()))
    digest = hashlib.sha256(f"{versions}|{embedder_id}|{size}".encode()).hexdigest()[:24]
    made_by = f"the batch_drift asset (the reference of {focus.key} for champions {versions})"
    return Key(f"{DATA}/drift/reference/{focus.key}/{digest}.parquet", made_by)


def write_reference(layout: Layout, key: Key, vectors: NDArray[np.float32]) -> None:
    rows = np.asarray(vectors, np.float32)
    flat = pa.array(rows.reshape(-1), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, rows.shape[1])
    layout.store.write_parquet(key, pa.table({"vector": column}))


def read_reference(layout: Layout, key: Key) -> NDArray[np.float32] | None:
    """The cached sample (float32, exactly as written); None when not cached yet."""
    if not layout.store.exists(key):
        return None
    column = layout.store.read_parquet(key).column("vector").combine_chunks()
    width = column.type.list_size
    return np.asarray(column.flatten().to_numpy(), np.float32).reshape(-1, width)
