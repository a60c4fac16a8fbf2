"""Image ids by collection label, from the metadata database's `image_labels` table."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from ml_platform.store.metadata import MetadataDB, labels


def labelled_ids(db: MetadataDB, collection_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(members, rejected) image ids of a collection, each sorted int64."""
    query = sa.select(labels.c.image_id, labels.c.rejected).where(
        labels.c.collection_id == collection_id
    )
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    members = sorted(int(r[0]) for r in rows if not r[1])
    rejected = sorted(int(r[0]) for r in rows if r[1])
    return np.asarray(members, np.int64), np.asarray(rejected, np.int64)
