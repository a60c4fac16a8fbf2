"""The crawlr resource: HTTP API or snapshot directory, chosen by the source setting."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from ml_platform.crawlr.client import CrawlrClient, open_crawlr
from ml_platform.crawlr.contract import parse_collections
from ml_platform.defs.resources.base import PlatformResource
from ml_platform.domain import Collection
from ml_platform.services.batches import FeedCursor, PlannedBatch, plan_next_batch
from ml_platform.store.metadata import MetadataDB


class CrawlrResource(PlatformResource):
    """crawlr (docs/crawlr.md). `source` is an http(s) URL or a snapshot directory."""

    source: str | None = None

    @property
    def resolved_source(self) -> str:
        return self.source or self.settings().crawlr_source

    @contextmanager
    def client(self) -> Iterator[CrawlrClient]:
        settings = self.settings()
        client = open_crawlr(
            self.resolved_source,
            timeout_s=settings.crawlr_timeout_s,
            retries=settings.crawlr_retries,
            image_hosts=settings.crawlr_image_hosts,
            image_deadline_s=settings.crawlr_image_deadline_s,
        )
        try:
            yield client
        finally:
            client.close()

    def collections_raw(self) -> bytes:
        with self.client() as client:
            return client.collections_raw()

    def collections(self, known_embeddings: list[str]) -> list[Collection]:
        return self.collections_with_digest(known_embeddings)[0]

    def collections_with_digest(self, known_embeddings: list[str]) -> tuple[list[Collection], str]:
        """The parsed collections and the sha256 of the reply they were parsed from."""
        with self.client() as client:
            raw = client.collections_raw()
        return parse_collections(raw, known_embeddings), hashlib.sha256(raw).hexdigest()

    def next_batch(
        self, cursor: FeedCursor, db: MetadataDB
    ) -> tuple[PlannedBatch | None, FeedCursor]:
        settings = self.settings()
        with self.client() as client:
            return plan_next_batch(
                client,
                cursor,
                db,
                page_size=settings.crawlr_page_size,
                max_images=settings.batch_max_images,
            )
