"""The ingestion ledger (sqlite): which image went into which batch, and named cursors.

It makes ingestion idempotent: an image id already assigned to a batch is never assigned to
another one, whatever happens to sensor cursors (restarts, resets, a CLI run beside the daemon).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_images (image_id INTEGER PRIMARY KEY, batch_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_key TEXT PRIMARY KEY, registered_at TEXT NOT NULL, ingested INTEGER NOT NULL DEFAULT 0
);
"""


class LedgerConflictError(RuntimeError):
    """Some images of a batch were assigned to another batch first."""


def _assigned_elsewhere(db: sqlite3.Connection, batch_key: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    query = f"SELECT image_id FROM batch_images WHERE image_id IN ({marks}) AND batch_key != ?"
    return {row[0] for row in db.execute(query, [*ids, batch_key])}


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # explicit BEGIN
        try:
            yield db
            if db.in_transaction:
                db.commit()
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
        finally:
            db.close()

    def unassigned(self, image_ids: Iterable[int]) -> set[int]:
        ids = list(image_ids)
        if not ids:
            return set()
        with self._connect() as db:
            marks = ",".join("?" * len(ids))
            query = f"SELECT image_id FROM batch_images WHERE image_id IN ({marks})"
            known = {row[0] for row in db.execute(query, ids)}
        return set(ids) - known

    def register_batch(self, batch_key: str, image_ids: Iterable[int]) -> None:
        """Assign the images to the batch and record it as pending, in one transaction.

        Raises LedgerConflictError, changing nothing, when another planner (the daemon's
        sensor beside `ml-platform run`) assigned one of the images in the meantime; re-plan.
        Registering the same batch again is a no-op.
        """
        rows = [(image_id, batch_key) for image_id in image_ids]
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one planner at a time between check and insert
            taken = _assigned_elsewhere(db, batch_key, [r[0] for r in rows])
            if taken:
                raise LedgerConflictError(
                    f"batch {batch_key}: images {sorted(taken)[:10]} are already in another "
                    "batch (a concurrent planner); plan again from the same cursor"
                )
            db.executemany("INSERT OR IGNORE INTO batch_images VALUES (?, ?)", rows)
            db.execute(
                "INSERT OR IGNORE INTO batches (batch_key, registered_at) "
                "VALUES (?, datetime('now'))",
                (batch_key,),
            )

    def pending_batches(self) -> list[str]:
        """Registered batches whose image catalog has not been written yet, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT batch_key FROM batches WHERE ingested = 0 ORDER BY registered_at, batch_key"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def ingested_batches(self) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT batch_key FROM batches WHERE ingested = 1 ORDER BY batch_key"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def mark_ingested(self, batch_key: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE batches SET ingested = 1 WHERE batch_key = ?", (batch_key,))

    def batch_of(self, image_id: int) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT batch_key FROM batch_images WHERE image_id = ?", (image_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def get_cursor(self, name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, name: str, value: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (name, value))
