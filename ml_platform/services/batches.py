"""Cut the next ingestion batch from crawlr's image feed without skipping or repeating images.

The cursor state is `{"after": <crawlr cursor or null>, "seen": [ids on that last, partial page]}`.
A full page moves `after` to crawlr's `next_cursor`; the end of the feed (next_cursor null) keeps
`after` and remembers the ids already taken from that page, so the next tick re-reads it and
takes only images that arrived since. The ledger is a second guard: an image id already in a
batch is never put in another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ml_platform.crawlr.client import CrawlrClient, fetch_images_page
from ml_platform.domain import ImageRecord
from ml_platform.store.ledger import Ledger
from ml_platform.store.manifests import ManifestStore


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
                "cursor (the ledger still prevents re-ingesting images)"
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
    client: CrawlrClient, cursor: FeedCursor, ledger: Ledger, *, page_size: int, max_images: int
) -> tuple[PlannedBatch | None, FeedCursor]:
    """Read pages after `cursor` until `max_images` new images or the feed's end."""
    taken: list[ImageRecord] = []
    malformed: list[str] = []
    while len(taken) < max_images:
        page = fetch_images_page(client, cursor.after, page_size)
        malformed.extend(page.malformed)
        fresh = [im for im in page.images if im.id not in set(cursor.seen)]
        new_ids = ledger.unassigned(im.id for im in fresh)
        taken.extend(im for im in fresh if im.id in new_ids)
        if page.next_cursor is None:
            seen = tuple(sorted({*cursor.seen, *(im.id for im in page.images)}))
            cursor = FeedCursor(after=cursor.after, seen=seen)
            break
        cursor = FeedCursor(after=page.next_cursor)
    if not taken:
        return None, cursor
    images = tuple(taken)
    return PlannedBatch(batch_key(images), images, tuple(malformed)), cursor


def register_batch(batch: PlannedBatch, manifests: ManifestStore, ledger: Ledger) -> None:
    """Write the manifest, then commit the batch to the ledger (the point of no return)."""
    manifests.write(batch.key, batch.images, batch.malformed)
    ledger.register_batch(batch.key, (image.id for image in batch.images))
