"""Embedding tables: one Parquet object per (focus, batch), vectors as float32 lists of one width.

The embedder is recorded in every row under the names of `EmbedderIdentity.to_columns` (the
same names and grammar as a classifier's MLflow tags). Rows whose status is `no_derivative`
(e.g. no face in the image) or `failed` carry a null vector and the reason; `ok` and
`no_derivative` rows count as computed and are never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ml_platform.domain import Focus
from ml_platform.store.layout import Layout
from ml_platform.vision.embedders.identity import EmbedderIdentity

DONE_STATUSES = ("ok", "no_derivative")


@dataclass(frozen=True)
class EmbeddingRow:
    image_id: int
    status: str  # ok | no_derivative | failed
    vector: np.ndarray | None = None
    error: str | None = None


def _table(rows: list[EmbeddingRow], focus: Focus, who: EmbedderIdentity, dim: int) -> pa.Table:
    vectors = [None if r.vector is None else r.vector.astype(np.float32).tolist() for r in rows]
    identity = {
        name: pa.array(values, pa.string()) for name, values in who.to_columns(len(rows)).items()
    }
    return pa.table(
        {
            "image_id": pa.array([r.image_id for r in rows], pa.int64()),
            "status": pa.array([r.status for r in rows], pa.string()),
            "error": pa.array([r.error for r in rows], pa.string()),
            "derivative_type": pa.array([focus.derivative_type.value] * len(rows), pa.string()),
            **identity,  # embedding_type, embedder_id, embedder_revision, weights
            "vector": pa.array(vectors, pa.list_(pa.float32())),
        },
        # Parquet has no fixed-size lists that round-trip with nulls; the width is metadata.
        metadata={"dimensionality": str(dim)},
    )


def write_embeddings(
    layout: Layout, focus: Focus, batch: str, rows: list[EmbeddingRow], who: EmbedderIdentity,
    dim: int,
) -> None:  # fmt: skip
    layout.store.write_parquet(layout.embeddings(focus, batch), _table(rows, focus, who, dim))


def read_table(layout: Layout, focus: Focus, batch: str) -> pa.Table:
    """The batch's embeddings of `focus`; MissingInputError when not embedded yet."""
    return layout.store.read_parquet(layout.embeddings(focus, batch))


def has_embeddings(layout: Layout, focus: Focus, batch: str) -> bool:
    return layout.store.exists(layout.embeddings(focus, batch))


def rows_of(table: pa.Table) -> list[EmbeddingRow]:
    out = []
    for item in table.to_pylist():
        vector = None if item["vector"] is None else np.asarray(item["vector"], np.float32)
        out.append(EmbeddingRow(item["image_id"], item["status"], vector, item["error"]))
    return out


def read_rows(layout: Layout, focus: Focus, batch: str) -> list[EmbeddingRow]:
    return rows_of(read_table(layout, focus, batch))


def vectors_of(
    tables: list[pa.Table],
) -> tuple[np.ndarray, np.ndarray, list[EmbedderIdentity]]:
    """Ids [n], float32 matrix [n, dim] and the embedder identity of each non-empty table,
    `ok` rows only."""
    ids: list[int] = []
    vectors: list[np.ndarray] = []
    identities: list[EmbedderIdentity] = []
    for table in tables:
        if table.num_rows == 0:
            continue
        ok = table.filter(pa.compute.equal(table.column("status"), "ok"))
        if ok.num_rows:
            ids.extend(ok.column("image_id").to_pylist())
            flat = ok.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            vectors.append(flat.reshape(ok.num_rows, -1).astype(np.float32))
        identities.append(EmbedderIdentity.from_columns(table.slice(0, 1).to_pylist()[0]))
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    return np.asarray(ids, np.int64), matrix, identities


def stored_identity(table: pa.Table) -> EmbedderIdentity | None:
    """The embedder a table was written with; None when it is empty."""
    if table.num_rows == 0:
        return None
    return EmbedderIdentity.from_columns(table.slice(0, 1).to_pylist()[0])
