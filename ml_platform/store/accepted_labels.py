"""Labels accepted from zero-shot suggestions, kept in the platform's metadata database.

crawlr stays the source of truth for collection membership; these rows (table
`accepted_labels` of `store.metadata`, sqlite or PostgreSQL) only label images that are in
no class of a dataset, and every row says it was accepted on the platform from a suggestion
(source, model, its weights, confidence, when). A dataset version marks such items
`accepted_suggestion` with the weights that suggested them: labels suggested with random
weights (the offline demo) carry no meaning, and the models trained on them say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ml_platform.domain import WeightsStatus
from ml_platform.store.metadata import MetadataDB, accepted_labels, utcnow

SUGGESTION_SOURCE = "label_suggestion"


@dataclass(frozen=True)
class AcceptedLabel:
    dataset: str
    image_id: int
    label: str
    model: str
    confidence: float
    source: str = SUGGESTION_SOURCE
    accepted_at: datetime | None = None  # None: now, when written
    weights: WeightsStatus | None = None  # the suggesting model's; None: not recorded


class AcceptedLabels:
    """Accept (insert or replace) and read platform-accepted labels, per dataset."""

    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def accept(self, labels: Iterable[AcceptedLabel]) -> int:
        """Record (or replace) accepted labels in one transaction; returns how many."""
        rows = [_row(label) for label in labels]
        if not rows:
            return 0
        table = accepted_labels
        with self.db.engine.begin() as conn:
            for row in rows:
                conn.execute(table.delete().where(
                    (table.c.dataset == row["dataset"]) & (table.c.image_id == row["image_id"])
                ))  # fmt: skip
            conn.execute(table.insert(), rows)
        return len(rows)

    def for_dataset(self, dataset: str) -> list[AcceptedLabel]:
        table = accepted_labels
        query = sa.select(table).where(table.c.dataset == dataset).order_by(table.c.image_id)
        with self.db.engine.begin() as conn:
            return [_label(row) for row in conn.execute(query).mappings()]

    def labels(self, dataset: str) -> dict[int, str]:
        """image id -> accepted label."""
        return {row.image_id: row.label for row in self.for_dataset(dataset)}

    def suggested_with(self, dataset: str) -> dict[int, WeightsStatus | None]:
        """image id -> the weights of the model that suggested its accepted label."""
        return {row.image_id: row.weights for row in self.for_dataset(dataset)}


def _row(label: AcceptedLabel) -> dict[str, object]:
    return {
        "dataset": label.dataset, "image_id": label.image_id, "label": label.label,
        "source": label.source, "model": label.model, "confidence": float(label.confidence),
        "accepted_at": label.accepted_at or utcnow(),
        "weights": label.weights.value if label.weights else None,
    }  # fmt: skip


def _label(row: sa.RowMapping) -> AcceptedLabel:
    return AcceptedLabel(
        str(row["dataset"]), int(row["image_id"]), str(row["label"]), str(row["model"]),
        float(row["confidence"]), str(row["source"]), _utc(row["accepted_at"]),
        WeightsStatus(row["weights"]) if row["weights"] else None,
    )  # fmt: skip


def _utc(value: datetime) -> datetime:
    """sqlite returns naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
