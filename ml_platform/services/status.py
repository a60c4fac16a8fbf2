"""`ml-platform status`: what the platform holds, what failed and what is still missing.

Counts come from the metadata database (which image is in which batch, attempts) and the
per-batch tables; which batches are complete comes from Dagster (see defs/status.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ml_platform.domain import Focus, IngestStatus
from ml_platform.store.layout import Layout
from ml_platform.store.tables import read_catalog
from ml_platform.store.vectors import has_embeddings, read_rows


@dataclass
class FocusCounts:
    embedded: int = 0
    no_derivative: int = 0
    failed: int = 0
    missing: int = 0


@dataclass
class StatusReport:
    images: dict[str, int]
    foci: dict[str, FocusCounts]
    failures: list[dict[str, Any]]
    batches: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "foci": {k: vars(v) for k, v in self.foci.items()},
            "failures": self.failures,
            "batches": self.batches,
        }


def image_status(layout: Layout, foci: list[Focus]) -> StatusReport:
    """Per-image counts over every registered batch, and every unresolved failure."""
    db = layout.metadata()
    keys = db.batch_keys()
    seen_in: Counter[int] = Counter()
    outcome: dict[int, IngestStatus] = {}
    per_focus = {f.key: FocusCounts() for f in foci}
    failures: list[dict[str, Any]] = []
    for key in keys:
        if not layout.store.exists(layout.catalog(key)):
            continue  # registered, not catalogued yet: its images count as pending
        catalog = read_catalog(layout, key)
        ok_ids = {e.image.id for e in catalog if e.status is IngestStatus.OK}
        for entry in catalog:
            seen_in[entry.image.id] += 1
            outcome[entry.image.id] = entry.status
        for focus in foci:
            _count_focus(layout, focus, key, ok_ids, per_focus[focus.key], failures)
    for row in db.attempt_rows():
        failures.append(
            {"image_id": int(row["image_id"]), "stage": f"{row['stage']} ({row['status']})",
             "reason": row["reason"] or "", "attempts": int(row["attempts"])}
        )  # fmt: skip
    statuses = Counter(outcome.values())
    seen = db.image_count()
    images = {
        "seen": seen,
        "ok": statuses.get(IngestStatus.OK, 0),
        "failed": statuses.get(IngestStatus.FAILED, 0),
        "pending": seen - len(outcome),
        "in_more_than_one_batch": sum(1 for n in seen_in.values() if n > 1),
    }
    return StatusReport(images=images, foci=per_focus, failures=failures)


def _count_focus(
    layout: Layout,
    focus: Focus,
    key: str,
    ok_ids: set[int],
    counts: FocusCounts,
    failures: list[dict[str, Any]],
) -> None:
    embedded = has_embeddings(layout, focus, key)
    rows = {r.image_id: r for r in read_rows(layout, focus, key)} if embedded else {}
    for image_id in ok_ids:
        row = rows.get(image_id)
        if row is None:
            counts.missing += 1
        elif row.status == "ok":
            counts.embedded += 1
        elif row.status == "no_derivative":
            counts.no_derivative += 1
        else:
            counts.failed += 1
            failures.append(
                {"image_id": image_id, "stage": f"embeddings {focus.key}",
                 "reason": row.error or "", "attempts": 1}
            )  # fmt: skip
