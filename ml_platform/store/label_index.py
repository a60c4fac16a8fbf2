"""Apply crawlr's label states to the label index (`image_labels`), exactly once.

A row is an image's whole label state, so applying it is a diff against the index: applying
the same row twice changes nothing the second time. Each page is one transaction that writes
the index, the `label_history` of what changed and the cursor past that page together, so a
crash between pages leaves either the whole page applied with its cursor, or neither. A row
older (crawlr's `updated_at`) than the newest applied for its image is ignored, so even a
page replayed after a later change cannot undo it. Images not registered in a batch are left
out: ingestion reads their labels from the image feed when their batch is planned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ml_platform.domain import ImageLabels, LabelChange, LabelSource, LabelState
from ml_platform.store.metadata import (
    MetadataDB,
    images,
    label_history,
    label_updates,
    labels,
    utcnow,
    write_cursor,
)

CHUNK = 900  # sqlite's bound-parameter limit, with room


@dataclass(frozen=True)
class AppliedPage:
    changes: tuple[LabelChange, ...]
    not_ingested: int  # rows of images no batch holds: ingestion reads their labels
    stale: int  # rows older than the newest already applied for their image


def desired(row: ImageLabels) -> dict[int, LabelState]:
    """collection -> state; a collection both listed and rejected stays a member (as at
    ingestion, `metadata._label_rows`)."""
    out = {cid: LabelState.REJECTED for cid in row.rejected_collection_ids}
    out.update({cid: LabelState.MEMBER for cid in row.collection_ids})
    return out


def diff(
    image_id: int, current: dict[int, LabelState], wanted: dict[int, LabelState]
) -> list[LabelChange]:
    out = []
    for cid in sorted(current.keys() | wanted.keys()):
        before = current.get(cid, LabelState.NONE)
        after = wanted.get(cid, LabelState.NONE)
        if before is not after:
            out.append(LabelChange(image_id, cid, before, after))
    return out


def apply_labels(
    db: MetadataDB,
    rows: Sequence[ImageLabels],
    source: LabelSource,
    source_ref: str,
    cursor: tuple[str, str] | None = None,
) -> AppliedPage:
    """Apply one page of label states and, in the same transaction, set `cursor`
    (name, value) past it."""
    newest = newest_per_image(rows)
    with db.transaction() as conn:
        ingested = _ingested(conn, sorted(newest))
        applied = _applied_times(conn, sorted(ingested))
        fresh = [newest[i] for i in sorted(ingested) if not _older(newest[i], applied.get(i))]
        current = _index_states(conn, [r.image_id for r in fresh])
        changes = [c for r in fresh for c in diff(r.image_id, current.get(r.image_id, {}),
                                                  desired(r))]  # fmt: skip
        _write_index(conn, changes)
        _write_history(conn, changes, {r.image_id: r.updated_at for r in fresh}, source,
                       source_ref)  # fmt: skip
        _write_times(conn, [r for r in fresh if r.updated_at is not None])
        if cursor is not None:
            write_cursor(conn, *cursor)
    stale = len(ingested) - len(fresh)
    return AppliedPage(tuple(changes), len(newest) - len(ingested), stale)


def newest_per_image(rows: Sequence[ImageLabels]) -> dict[int, ImageLabels]:
    """One row per image: the newest by `updated_at` (the later one in the page on a tie)."""
    out: dict[int, ImageLabels] = {}
    for row in rows:
        seen = out.get(row.image_id)
        if seen is None or not _older(row, seen.updated_at):
            out[row.image_id] = row
    return out


def _older(row: ImageLabels, applied: datetime | None) -> bool:
    return row.updated_at is not None and applied is not None and row.updated_at < applied


def _chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def _ingested(conn: Connection, ids: list[int]) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(ids):
        query = sa.select(images.c.image_id).where(images.c.image_id.in_(chunk))
        out.update(int(row[0]) for row in conn.execute(query))
    return out


def _applied_times(conn: Connection, ids: list[int]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        query = sa.select(label_updates).where(label_updates.c.image_id.in_(chunk))
        for image_id, when in conn.execute(query):
            out[int(image_id)] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return out


def _index_states(conn: Connection, ids: list[int]) -> dict[int, dict[int, LabelState]]:
    out: dict[int, dict[int, LabelState]] = {}
    for chunk in _chunks(ids):
        for image_id, cid, rejected in conn.execute(
            sa.select(labels).where(labels.c.image_id.in_(chunk))
        ):
            state = LabelState.REJECTED if rejected else LabelState.MEMBER
            out.setdefault(int(image_id), {})[int(cid)] = state
    return out


def _write_index(conn: Connection, changes: list[LabelChange]) -> None:
    key = (labels.c.image_id == sa.bindparam("i")) & (labels.c.collection_id == sa.bindparam("c"))
    gone = [{"i": c.image_id, "c": c.collection_id} for c in changes if c.after is LabelState.NONE]
    new = [
        {"image_id": c.image_id, "collection_id": c.collection_id,
         "rejected": c.after is LabelState.REJECTED}
        for c in changes if c.before is LabelState.NONE
    ]  # fmt: skip
    moved = [
        {"i": c.image_id, "c": c.collection_id, "r": c.after is LabelState.REJECTED}
        for c in changes
        if LabelState.NONE not in (c.before, c.after)
    ]
    if gone:
        conn.execute(labels.delete().where(key), gone)
    if new:
        conn.execute(labels.insert(), new)
    if moved:
        conn.execute(labels.update().where(key).values(rejected=sa.bindparam("r")), moved)


def _write_history(
    conn: Connection,
    changes: list[LabelChange],
    updated: dict[int, datetime | None],
    source: LabelSource,
    source_ref: str,
) -> None:
    now = utcnow()
    rows = [
        {"image_id": c.image_id, "collection_id": c.collection_id, "before": c.before.value,
         "after": c.after.value, "changed_at": now, "updated_at": updated.get(c.image_id),
         "source": source.value, "source_ref": source_ref}
        for c in changes
    ]  # fmt: skip
    if rows:
        conn.execute(label_history.insert(), rows)


def _write_times(conn: Connection, rows: list[ImageLabels]) -> None:
    ids = [r.image_id for r in rows]
    for chunk in _chunks(ids):
        conn.execute(label_updates.delete().where(label_updates.c.image_id.in_(chunk)))
    if rows:
        conn.execute(
            label_updates.insert(),
            [{"image_id": r.image_id, "updated_at": r.updated_at} for r in rows],
        )


def history(db: MetadataDB, image_id: int | None = None) -> list[dict[str, Any]]:
    """The label history, oldest first (of one image, or all)."""
    query = sa.select(label_history).order_by(label_history.c.id)
    if image_id is not None:
        query = query.where(label_history.c.image_id == image_id)
    with db.transaction() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def last_history_id(db: MetadataDB) -> int:
    with db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.max(label_history.c.id))).scalar() or 0)


def changed_collections(db: MetadataDB, source: LabelSource, ref_prefix: str) -> list[int]:
    """The collections the pages of one scan changed (their `source_ref` starts with
    `ref_prefix`)."""
    query = (
        sa.select(label_history.c.collection_id)
        .where(label_history.c.source == source.value)
        .where(label_history.c.source_ref.startswith(ref_prefix, autoescape=True))
        .distinct()
    )
    with db.transaction() as conn:
        return sorted(int(row[0]) for row in conn.execute(query))
