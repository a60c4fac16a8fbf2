"""What label changes cost: applying 10,000 of them, and rescanning a 100k-image feed.

1. 10,000 label changes (one per image, over 100 collections) applied to the label index
   through `store.label_index.apply_labels` in pages of `--page-size` rows (the label tick's
   path: one transaction per page with history and cursor), against a plain peer: the same
   changes as row-by-row upserts, one transaction per change (select, update or insert,
   history row), on a copy of the same database. Goal (issue 22): <= 5 s for 10k.
2. The 404 fallback: the whole feed of `--feed` images re-read through `label_tick` from the
   real test crawlr server on 127.0.0.1 (no labels.json), 1 % of the images relabelled,
   against a plain peer on the same pages: a per-image lookup of the index and an update
   where it differs. Both peers run in this process, on this machine, in the same run.

    python benchmarks/label_changes.py [--changes 10000] [--feed 100000] [--page-size 200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml_platform.crawlr.client import fetch_images_page, open_crawlr  # noqa: E402
from ml_platform.crawlr.labels import labels_of_feed  # noqa: E402
from ml_platform.domain import ImageLabels, ImageRecord, LabelSource  # noqa: E402
from ml_platform.services.label_changes import LabelSyncConfig, label_tick  # noqa: E402
from ml_platform.store.label_index import apply_labels, desired  # noqa: E402
from ml_platform.store.metadata import (  # noqa: E402
    MetadataDB,
    label_history,
    labels,
    utcnow,
)
from tests.crawlr_server import CrawlrServer, CrawlrState  # noqa: E402

T0 = datetime(2025, 4, 1, tzinfo=UTC)
COLLECTIONS = 100


def ingested_db(path: Path, n: int) -> MetadataDB:
    """A metadata database holding `n` ingested images, each a member of one collection."""
    db = MetadataDB(f"sqlite:///{path}")
    for start in range(0, n, 5000):
        records = [
            ImageRecord(id=i, url=f"/media/{i}.jpg", created_at=T0,
                        collection_ids=(i % COLLECTIONS,))
            for i in range(start + 1, min(start + 5000, n) + 1)
        ]  # fmt: skip
        db.register_batch(f"b{start:07d}", records)
    return db


def changes(n: int) -> list[ImageLabels]:
    """Image i rejected from its collection: one label change per image."""
    when = T0 + timedelta(days=1)
    return [ImageLabels(i, (), (i % COLLECTIONS,), when) for i in range(1, n + 1)]


def apply_paged(db: MetadataDB, rows: list[ImageLabels], page: int) -> int:
    done = 0
    for start in range(0, len(rows), page):
        chunk = rows[start : start + page]
        cursor = ("labels", str(start + len(chunk)))
        done += len(apply_labels(db, chunk, LabelSource.LABELS_JSON, str(start), cursor).changes)
    return done


def apply_row_by_row(db: MetadataDB, rows: list[ImageLabels]) -> int:
    """The plain peer: one transaction per (image, collection) upsert with its history row."""
    done = 0
    for row in rows:
        for cid, state in desired(row).items():
            with db.engine.begin() as conn:
                key = (labels.c.image_id == row.image_id) & (labels.c.collection_id == cid)
                rejected = state.value == "rejected"
                current = conn.execute(sa.select(labels.c.rejected).where(key)).first()
                if current is not None and bool(current[0]) == rejected:
                    continue
                if current is None:
                    conn.execute(labels.insert().values(image_id=row.image_id, collection_id=cid,
                                                        rejected=rejected))  # fmt: skip
                else:
                    conn.execute(labels.update().where(key).values(rejected=rejected))
                conn.execute(label_history.insert().values(
                    image_id=row.image_id, collection_id=cid, before="member", after=state.value,
                    changed_at=utcnow(), updated_at=row.updated_at, source="labels.json",
                    source_ref="peer"))  # fmt: skip
                done += 1
    return done


def bench_changes(root: Path, n: int, page: int) -> None:
    base = root / "changes.sqlite"
    ingested_db(base, n).engine.dispose()
    ours_path, peer_path = root / "ours.sqlite", root / "peer.sqlite"
    shutil.copy(base, ours_path)
    shutil.copy(base, peer_path)
    rows = changes(n)
    ours_db, peer_db = MetadataDB(f"sqlite:///{ours_path}"), MetadataDB(f"sqlite:///{peer_path}")
    started = time.perf_counter()
    ours = apply_paged(ours_db, rows, page)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    peer = apply_row_by_row(peer_db, rows)
    peer_s = time.perf_counter() - started
    assert ours == peer == n, (ours, peer)
    assert ours_db.label_fingerprints() == peer_db.label_fingerprints()
    print(f"\n{n} label changes over {COLLECTIONS} collections (sqlite, pages of {page})")
    print("| path | seconds | changes/s |\n|---|---|---|")
    print(f"| apply_labels, a transaction per page | {ours_s:.2f} | {n / ours_s:,.0f} |")
    print(f"| peer: row-by-row upserts, a transaction each | {peer_s:.2f} | {n / peer_s:,.0f} |")
    print(f"speed-up {peer_s / ours_s:.1f}x; goal <= 5 s: {'met' if ours_s <= 5 else 'MISSED'}")


def crawlr_feed(n: int, relabelled: int) -> CrawlrState:
    state = CrawlrState(serves_labels=False)
    for i in range(1, n + 1):
        cid = i % COLLECTIONS
        moved = i % (n // relabelled) == 0
        state.images.append({
            "id": i, "url": f"/media/{i}.jpg", "pet_id": None, "created_at": T0.isoformat(),
            "collection_ids": [] if moved else [cid],
            "rejected_collection_ids": [cid] if moved else [],
        })  # fmt: skip
    return state


def peer_rescan(db: MetadataDB, url: str, page: int) -> tuple[int, int]:
    """The plain peer: page through the feed; per image, read its index rows and fix them."""
    client, after, pages, fixed = open_crawlr(url, retries=0), None, 0, 0
    while True:
        feed = labels_of_feed(fetch_images_page(client, after, page))
        pages += 1
        with db.engine.begin() as conn:
            for row in feed.labels:
                query = sa.select(labels.c.collection_id, labels.c.rejected).where(
                    labels.c.image_id == row.image_id
                )
                now = {int(c): "rejected" if r else "member" for c, r in conn.execute(query)}
                wanted = {c: s.value for c, s in desired(row).items()}
                if now != wanted:
                    conn.execute(labels.delete().where(labels.c.image_id == row.image_id))
                    conn.execute(labels.insert(), [
                        {"image_id": row.image_id, "collection_id": c,
                         "rejected": s == "rejected"} for c, s in wanted.items()
                    ])  # fmt: skip
                    fixed += 1
        if feed.next_cursor is None:
            return pages, fixed
        after = feed.next_cursor


def bench_rescan(root: Path, n: int, page: int) -> None:
    relabelled = max(1, n // 100)
    base = root / "feed.sqlite"
    ingested_db(base, n).engine.dispose()
    shutil.copy(base, root / "feed_peer.sqlite")
    ours_db = MetadataDB(f"sqlite:///{base}")
    peer_db = MetadataDB(f"sqlite:///{root / 'feed_peer.sqlite'}")
    with CrawlrServer(crawlr_feed(n, relabelled)) as server:
        config = LabelSyncConfig(page_size=page, rescan_interval_s=21600)
        started = time.perf_counter()
        tick = label_tick(open_crawlr(server.url, retries=0), ours_db, config, now=T0)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        pages, fixed = peer_rescan(peer_db, server.url, page)
        peer_s = time.perf_counter() - started
    assert tick.complete and tick.pages == pages, (tick.pages, pages)
    assert len({c.image_id for c in tick.changes}) == fixed == relabelled
    assert ours_db.label_fingerprints() == peer_db.label_fingerprints()
    print(f"\nrescan of a {n:,}-image feed (no labels.json; HTTP on 127.0.0.1, pages of {page}; "
          f"{relabelled} images relabelled)")  # fmt: skip
    print("| path | pages | seconds | images/s |\n|---|---|---|---|")
    print(f"| label_tick (404 fallback) | {tick.pages} | {ours_s:.1f} | {n / ours_s:,.0f} |")
    print(f"| peer: per-image lookup and fix | {pages} | {peer_s:.1f} | {n / peer_s:,.0f} |")
    print(f"ratio ours/peer {ours_s / peer_s:.2f}; {len(tick.changes)} label changes applied")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--feed", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_changes(Path(tmp), args.changes, args.page_size)
        bench_rescan(Path(tmp), args.feed, args.page_size)


if __name__ == "__main__":
    main()
