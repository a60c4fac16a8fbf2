"""Cut the next ingestion batch from crawlr's image feed without skipping or repeating images.

The cursor state is `{"after": <crawlr cursor or null>, "seen": [ids on that last, partial page]}`.
A full page moves `after` to crawlr's `next_cursor`; the end of the feed (next_cursor null) keeps
`after` and remembers the ids already taken from that page, so the next tick re-reads it and
takes only images that arrived since. The metadata database is the guard that makes planning
exactly-once: an image id is its primary key, so an id repeated within a page, across pages, by
two planners at once or after a crash enters one batch only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ml_platform.crawlr.client import CrawlrClient, fetch_images_page
from ml_platform.domain import ImageRecord
from ml_platform.store.manifests import ManifestStore
from ml_platform.store.metadata import MetadataDB


@dataclass(frozen=True)
class FeedCursor:
    after: str | None = None
    seen: tuple[int, ...] = ()

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "seen": list(self.seen)})

    @classmethod
    def loads(cls, raw: str | None) -> FeedCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(after=data.get("after"), seen=tuple(data.get("seen", [])))
        except (ValueError, AttributeError) as exc:
            raise ValueError(
                f"image feed cursor {raw!r} is not ml_platform's JSON cursor; reset the sensor "
                "cursor (the metadata database still prevents re-ingesting images)"
            ) from exc


@dataclass(frozen=True)
class PlannedBatch:
    key: str
    images: tuple[ImageRecord, ...]
    malformed: tuple[str, ...] = field(default=())


def batch_key(images: tuple[ImageRecord, ...]) -> str:
    """Deterministic from the contents, so a retried tick names the same batch."""
    ids = [image.id for image in images]
    return f"batch-{min(ids):09d}-{max(ids):09d}-n{len(ids)}"


def plan_next_batch(
    client: CrawlrClient, cursor: FeedCursor, db: MetadataDB, *, page_size: int, max_images: int
) -> tuple[PlannedBatch | None, FeedCursor]:
    """Read pages after `cursor` until `max_images` new images or the feed's end.

    An id seen twice (within a page or across pages) is taken once, in its first form.
    """
    taken: dict[int, ImageRecord] = {}
    malformed: list[str] = []
    while len(taken) < max_images:
        page = fetch_images_page(client, cursor.after, page_size)
        malformed.extend(page.malformed)
        skip = set(cursor.seen)
        fresh = [im for im in page.images if im.id not in skip and im.id not in taken]
        new_ids = db.unassigned(im.id for im in fresh)
        for im in fresh:
            if im.id in new_ids:
                taken.setdefault(im.id, im)
        if page.next_cursor is None:
            seen = tuple(sorted({*cursor.seen, *(im.id for im in page.images)}))
            cursor = FeedCursor(after=cursor.after, seen=seen)
            break
        cursor = FeedCursor(after=page.next_cursor)
    if not taken:
        return None, cursor
    images = tuple(taken.values())
    return PlannedBatch(batch_key(images), images, tuple(malformed)), cursor


def register_batch(batch: PlannedBatch, manifests: ManifestStore, db: MetadataDB) -> None:
    """Write the manifest, then commit the batch to the metadata database (the point of no
    return: a manifest without a registered batch is an orphan that is never read)."""
    manifests.write(batch.key, batch.images, batch.malformed)
    db.register_batch(batch.key, batch.images)
