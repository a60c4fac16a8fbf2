"""The crawlr resource: HTTP API or snapshot directory, chosen by the source setting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ml_platform.crawlr.client import CrawlrClient, fetch_collections, open_crawlr
from ml_platform.defs.resources.base import PlatformResource
from ml_platform.domain import Collection
from ml_platform.services.batches import FeedCursor, PlannedBatch, plan_next_batch
from ml_platform.store.ledger import Ledger


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
        )
        try:
            yield client
        finally:
            client.close()

    def collections_raw(self) -> bytes:
        with self.client() as client:
            return client.collections_raw()

    def collections(self, known_embeddings: list[str]) -> list[Collection]:
        with self.client() as client:
            return fetch_collections(client, known_embeddings)

    def next_batch(
        self, cursor: FeedCursor, ledger: Ledger
    ) -> tuple[PlannedBatch | None, FeedCursor]:
        settings = self.settings()
        with self.client() as client:
            return plan_next_batch(
                client,
                cursor,
                ledger,
                page_size=settings.crawlr_page_size,
                max_images=settings.batch_max_images,
            )
