"""Embedding tables written before `EmbedderIdentity` still read: same columns, same embedder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ml_platform.domain import DerivativeType, Focus
from ml_platform.store.layout import Layout
from ml_platform.store.vectors import (
    EmbeddingRow,
    read_table,
    stored_identity,
    vectors_of,
    write_embeddings,
)
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.identity import EmbedderIdentity

FACE = Focus(DerivativeType.PROMINENT_FACE, "embed_face_custom")
NOW = EmbedderIdentity(
    FACE.embedding_type, "/models/arcface.onnx", "sha256:0f0f+align-five-point", Backend.ONNX_INT8
)


def old_table(vectors: list[list[float] | None]) -> pa.Table:
    """The table the embeddings asset wrote before the identity (store/vectors.py at 399fd90):
    a face-aligned INT8 type wrote its backend before the alignment suffix."""
    n = len(vectors)
    text = {
        "derivative_type": FACE.derivative_type.value,
        "embedding_type": FACE.embedding_type,
        "embedder_id": "/models/arcface.onnx",
        "embedder_revision": "sha256:0f0f+onnx-int8+align-five-point",
        "weights": "pretrained",
    }
    return pa.table(
        {
            "image_id": pa.array(range(n), pa.int64()),
            "status": pa.array(["ok" if v else "no_derivative" for v in vectors], pa.string()),
            "error": pa.array([None] * n, pa.string()),
            **{name: pa.array([value] * n, pa.string()) for name, value in text.items()},
            "vector": pa.array(vectors, pa.list_(pa.float32())),
        },
        metadata={"dimensionality": "2"},
    )


def test_a_table_written_before_the_identity_reads_as_its_embedder(layout: Layout) -> None:
    layout.store.write_parquet(layout.embeddings(FACE, "b1"), old_table([[1.0, 0.0], None]))
    table = read_table(layout, FACE, "b1")
    ids, vectors, identities = vectors_of([table])
    assert (ids.tolist(), vectors.shape, identities) == ([0], (1, 2), [NOW])
    assert stored_identity(table) == NOW  # a re-run keeps its rows: same embedder


def test_new_tables_keep_the_old_columns(layout: Layout) -> None:
    rows = [EmbeddingRow(0, "ok", np.ones(2, np.float32))]
    write_embeddings(layout, FACE, "b2", rows, NOW, 2)
    table = read_table(layout, FACE, "b2")
    assert table.column_names == old_table([[1.0, 0.0]]).column_names
    assert table.column("embedder_revision").to_pylist() == [NOW.revision]
    assert vectors_of([table])[2] == [NOW]
