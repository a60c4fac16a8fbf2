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


def label_times(db: MetadataDB, collection_id: int, image_ids: list[int]) -> dict[int, datetime]:
    """image id -> when its current label for the collection was made, as far as the platform
    knows: the newest label change recorded, else its batch's registration."""
    wanted = sorted({int(i) for i in image_ids})
    if not wanted:
        return {}
    with db.transaction() as conn:
        out = {
            int(image_id): utc_aware(at)
            for image_id, at in conn.execute(
                sa.select(images.c.image_id, batches.c.registered_at)
                .join(batches, images.c.batch_key == batches.c.batch_key)
                .where(images.c.image_id.in_(wanted))
            )
        }
        for image_id, at in conn.execute(
            sa.select(label_history.c.image_id, sa.func.max(label_history.c.changed_at))
            .where(label_history.c.collection_id == collection_id)
            .where(label_history.c.image_id.in_(wanted))
            .group_by(label_history.c.image_id)
        ):
            out[int(image_id)] = max(out.get(int(image_id), utc_aware(at)), utc_aware(at))
    return out


def utc_aware(value: datetime) -> datetime:
    """`value` as UTC when the database gave it without a zone (SQLite does)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
