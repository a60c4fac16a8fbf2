"""Labels accepted from zero-shot suggestions, kept in the platform store (sqlite).

crawlr stays the source of truth for collection membership; these rows only label images
that are in no class of a dataset, and every row says it came from a suggestion (model,
confidence, when). A dataset version marks such items `accepted_suggestion`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted_labels (
    dataset TEXT NOT NULL, image_id INTEGER NOT NULL, label TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'label_suggestion', model TEXT NOT NULL,
    confidence REAL NOT NULL, accepted_at TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (dataset, image_id)
);
"""


@dataclass(frozen=True)
class AcceptedLabel:
    dataset: str
    image_id: int
    label: str
    model: str
    confidence: float
    source: str = "label_suggestion"
    accepted_at: str = ""


class AcceptedLabels:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def accept(self, labels: Iterable[AcceptedLabel]) -> int:
        """Record (or replace) accepted labels; returns how many were written."""
        rows = [(x.dataset, x.image_id, x.label, x.source, x.model, x.confidence) for x in labels]
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO accepted_labels "
                "(dataset, image_id, label, source, model, confidence) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def for_dataset(self, dataset: str) -> list[AcceptedLabel]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT dataset, image_id, label, model, confidence, source, accepted_at "
                "FROM accepted_labels WHERE dataset = ? ORDER BY image_id",
                (dataset,),
            ).fetchall()
        return [AcceptedLabel(r[0], int(r[1]), r[2], r[3], float(r[4]), r[5], r[6]) for r in rows]

    def labels(self, dataset: str) -> dict[int, str]:
        """image id -> accepted label."""
        return {row.image_id: row.label for row in self.for_dataset(dataset)}
