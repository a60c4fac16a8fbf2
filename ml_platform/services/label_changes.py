"""One label tick: read what changed in crawlr's labels and apply it to the label index.

Three ways to learn about changes, chosen by what crawlr offers (docs/crawlr.md):
- `GET /labels.json?since=CURSOR&limit=N`: pages of changed images after the label cursor;
- crawlr answers 404 there: the whole image feed is re-read, paged, every
  `label_rescan_interval_s` (`ML_PLATFORM_LABEL_RESCAN_INTERVAL_S`);
- a snapshot directory: its images.json is re-read whenever its digest changed.
Every page goes through `store.label_index.apply_labels`: diffed against the index, applied
with its history and the cursor past it in one transaction, so a replayed page or a crash
between pages changes nothing twice. The label_sensor and `ml-platform run` both call
`label_tick`; what a change retrains is decided by the retrain planner
(`services.retraining`), from the label index's counts and checksum.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ml_platform.crawlr.client import CrawlrClient, fetch_images_page, fetch_labels_page
from ml_platform.crawlr.labels import labels_of_feed
from ml_platform.domain import LabelChange, LabelSource, LabelsPage
from ml_platform.settings import Settings
from ml_platform.store.label_index import apply_labels, changed_collections
from ml_platform.store.metadata import MetadataDB, utcnow

log = logging.getLogger(__name__)
LABELS_CURSOR = "labels"
RESCAN_CURSOR = "labels_rescan"
SNAPSHOT_CURSOR = "labels_snapshot"


@dataclass(frozen=True)
class LabelSyncConfig:
    page_size: int  # the crawlr page size setting
    rescan_interval_s: float  # ML_PLATFORM_LABEL_RESCAN_INTERVAL_S
    max_pages: int = 1_000_000  # per tick; a scan stopped here resumes on the next tick

    @classmethod
    def from_settings(cls, settings: Settings, max_pages: int = 1_000_000) -> LabelSyncConfig:
        return cls(settings.crawlr_page_size, settings.label_rescan_interval_s, max_pages)


@dataclass
class LabelTick:
    source: LabelSource | None = None  # None: nothing was due this tick
    pages: int = 0
    rows: int = 0
    changes: list[LabelChange] = field(default_factory=list)
    not_ingested: int = 0  # rows of images not ingested yet: ingestion reads their labels
    stale: int = 0  # rows older than a change already applied to their image
    malformed: list[str] = field(default_factory=list)  # skipped rows, with the reason
    complete: bool = True  # False where max_pages stopped a scan before the end
    note: str = ""
    scan_changed: list[int] = field(default_factory=list)  # a finished scan: all it changed

    @property
    def collections(self) -> list[int]:
        """The collections whose labels this tick changed."""
        return sorted({c.collection_id for c in self.changes})

    @property
    def settled(self) -> list[int]:
        """The changed collections whose new labels are complete, ready for retraining: this
        tick's, or, for a feed rescan or snapshot scan spread over several ticks, nothing until
        its last page and then every collection the whole scan changed (one training run)."""
        if self.source is LabelSource.LABELS_JSON:
            return self.collections
        return self.scan_changed if self.complete else []

    def summary(self) -> str:
        if self.source is None:
            return self.note
        return (
            f"{self.source.value}: {self.pages} pages, {self.rows} rows, {len(self.changes)} "
            f"label changes in collections {self.collections}, {self.not_ingested} rows of "
            f"images not ingested yet, {self.stale} stale, {len(self.malformed)} malformed"
            + ("" if self.complete else "; the scan goes on next tick")
        )


@dataclass(frozen=True)
class ScanCursor:
    """A paged re-read of the whole feed: which one (`key`: the snapshot digest or the start
    time), where it is (`after`), and whether it finished (and when)."""

    key: str = ""
    after: str | None = None
    done: bool = True
    finished_at: str | None = None

    def dumps(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def loads(cls, raw: str | None) -> ScanCursor:
        if not raw:
            return cls()
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"label scan cursor {raw!r} is not ml_platform's; delete it from the metadata "
                "database's cursors table to rescan from the start"
            ) from exc


def label_tick(
    client: CrawlrClient, db: MetadataDB, config: LabelSyncConfig, now: datetime | None = None
) -> LabelTick:
    """Apply what changed since the last tick; see the module docstring for the three ways."""
    now = now or utcnow()
    digest = client.feed_digest()
    if digest is not None:
        tick = snapshot_tick(client, db, config, digest, now)
    else:
        tick = labels_json_tick(client, db, config) or rescan_tick(client, db, config, now)
    log.info("label tick: %s", tick.summary())
    return tick


def labels_json_tick(client: CrawlrClient, db: MetadataDB, config: LabelSyncConfig) -> (
    LabelTick | None
):  # fmt: skip
    """Pages of `labels.json` after the stored cursor; None where crawlr has no such endpoint.
    A null `next_cursor` keeps the cursor: the next tick asks again from the same place."""
    since = db.get_cursor(LABELS_CURSOR) or None
    tick = LabelTick(source=LabelSource.LABELS_JSON)
    for _ in range(config.max_pages):
        page = fetch_labels_page(client, since, config.page_size)
        if page is None:
            return tick if tick.pages else None
        cursor = None if page.next_cursor is None else (LABELS_CURSOR, page.next_cursor)
        _apply(db, tick, page, LabelSource.LABELS_JSON, since or "", cursor)
        if page.next_cursor in (None, since) or not page.labels:
            return tick
        since = page.next_cursor
    tick.complete = False
    return tick


def rescan_tick(
    client: CrawlrClient, db: MetadataDB, config: LabelSyncConfig, now: datetime
) -> LabelTick:
    """The 404 fallback: re-read the feed's labels every `rescan_interval_s`, paged."""
    state = ScanCursor.loads(db.get_cursor(RESCAN_CURSOR))
    if state.done and state.finished_at is not None:
        due = datetime.fromisoformat(state.finished_at) + timedelta(
            seconds=config.rescan_interval_s
        )
        if now < due:
            return LabelTick(note=f"crawlr has no labels.json; next feed rescan at {due}")
    if state.done:
        state = ScanCursor(key=now.isoformat(), done=False)
    return _scan(client, db, config, LabelSource.RESCAN, RESCAN_CURSOR, state, now)


def snapshot_tick(
    client: CrawlrClient, db: MetadataDB, config: LabelSyncConfig, digest: str, now: datetime
) -> LabelTick:
    """Re-read a snapshot's images.json whenever it changed (a scan cut short resumes)."""
    state = ScanCursor.loads(db.get_cursor(SNAPSHOT_CURSOR))
    if state.key == digest and state.done:
        return LabelTick(note="the snapshot's images.json is unchanged")
    if state.key != digest:
        state = ScanCursor(key=digest, done=False)
    return _scan(client, db, config, LabelSource.SNAPSHOT, SNAPSHOT_CURSOR, state, now)


def _scan(
    client: CrawlrClient,
    db: MetadataDB,
    config: LabelSyncConfig,
    source: LabelSource,
    name: str,
    state: ScanCursor,
    now: datetime,
) -> LabelTick:
    tick = LabelTick(source=source)
    for _ in range(config.max_pages):
        page = labels_of_feed(fetch_images_page(client, state.after, config.page_size))
        end = page.next_cursor is None
        ahead = replace(state, after=page.next_cursor, done=end,
                        finished_at=now.isoformat() if end else None)  # fmt: skip
        ref = f"{scan_ref(state.key)}{state.after or 'start'}"
        _apply(db, tick, page, source, ref, (name, ahead.dumps()))
        state = ahead
        if end:
            tick.scan_changed = changed_collections(db, source, scan_ref(state.key))
            return tick
    tick.complete = False
    return tick


def scan_ref(key: str) -> str:
    """The history's `source_ref` prefix of one scan (its pages append their cursor)."""
    return f"{key[:32]}@"


def _apply(
    db: MetadataDB,
    tick: LabelTick,
    page: LabelsPage,
    source: LabelSource,
    ref: str,
    cursor: tuple[str, str] | None,
) -> None:
    applied = apply_labels(db, page.labels, source, ref, cursor)
    tick.pages += 1
    tick.rows += len(page.labels)
    tick.changes.extend(applied.changes)
    tick.not_ingested += applied.not_ingested
    tick.stale += applied.stale
    tick.malformed.extend(page.malformed)
