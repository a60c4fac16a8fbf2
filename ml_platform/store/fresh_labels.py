"""The labels of a collection that a model trained at a given time never saw.

An image's label is fresh for a model created at `since` when the image's batch was
registered after `since` (the model cannot have seen the image), or when its label for the
collection now differs from the one it had at `since` (the first `label_history` row after
`since` holds that one in `before`). A label changed and changed back is not fresh. Only
current members and rejections count: an image whose label was removed has none to score.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ml_platform.domain import LabelState
from ml_platform.store.metadata import MetadataDB, batches, images, label_history, labels


def fresh_labels(db: MetadataDB, collection_id: int, since: datetime) -> dict[int, bool]:
    """image id -> True (member) / False (rejected), for the labels fresh since `since`."""
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    with db.transaction() as conn:
        current = {
            int(image_id): LabelState.REJECTED if rejected else LabelState.MEMBER
            for image_id, rejected in conn.execute(
                sa.select(labels.c.image_id, labels.c.rejected).where(
                    labels.c.collection_id == collection_id
                )
            )
        }
        arrived = {
            int(row[0])
            for row in conn.execute(
                sa.select(images.c.image_id)
                .join(batches, images.c.batch_key == batches.c.batch_key)
                .join(labels, labels.c.image_id == images.c.image_id)
                .where(labels.c.collection_id == collection_id)
                .where(batches.c.registered_at > since)
            )
        }
        first_before: dict[int, LabelState] = {}
        for image_id, before in conn.execute(
            sa.select(label_history.c.image_id, label_history.c.before)
            .where(label_history.c.collection_id == collection_id)
            .where(label_history.c.changed_at > since)
            .order_by(label_history.c.id)
        ):
            first_before.setdefault(int(image_id), LabelState(before))
    return {
        image_id: state is LabelState.MEMBER
        for image_id, state in current.items()
        if image_id in arrived or first_before.get(image_id, state) is not state
    }
