"""What was last sent per alerting subject, kept in the platform's metadata database.

A failing check (a champion's health, a batch's drift) is a state, not an event: one row per
(alert kind, subject) says which severity was last delivered and when (table `alert_log` of
`store.metadata`, sqlite or PostgreSQL). `ml_platform.alerts.decide_alert` reads the row to
choose between sending, suppressing a repeat and sending `resolved`; a row is written only
after a delivery, so an alert a receiver missed is sent again at the next evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ml_platform.store.metadata import MetadataDB, alert_log


@dataclass(frozen=True)
class SentAlert:
    """The newest alert delivered for one subject; `first_sent` is when its failure began."""

    kind: str
    subject: str
    severity: str
    first_sent: datetime
    last_sent: datetime
    fingerprint: str


class AlertLog:
    """Read, record and clear the last alert sent per (kind, subject)."""

    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def last(self, kind: str, subject: str) -> SentAlert | None:
        query = sa.select(alert_log).where(_key(kind, subject))
        with self.db.transaction() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _sent(row)

    def record(self, kind: str, subject: str, severity: str, fingerprint: str, at: datetime) -> (
        SentAlert
    ):  # fmt: skip
        """A delivery at `at`: the row's severity, last_sent and fingerprint move; first_sent
        stays while the subject keeps failing."""
        values = {"severity": severity, "last_sent": at, "fingerprint": fingerprint}
        with self.db.transaction() as conn:
            updated = conn.execute(alert_log.update().where(_key(kind, subject)).values(**values))
            if not updated.rowcount:
                conn.execute(alert_log.insert().values(kind=kind, subject=subject, first_sent=at,
                                                       **values))  # fmt: skip
        sent = self.last(kind, subject)
        assert sent is not None
        return sent

    def clear(self, kind: str, subject: str) -> None:
        """The subject passes again (its `resolved` alert was delivered)."""
        with self.db.transaction() as conn:
            conn.execute(alert_log.delete().where(_key(kind, subject)))


def _key(kind: str, subject: str) -> sa.ColumnElement[bool]:
    return (alert_log.c.kind == kind) & (alert_log.c.subject == subject)


def _sent(row: sa.RowMapping) -> SentAlert:
    return SentAlert(
        str(row["kind"]), str(row["subject"]), str(row["severity"]), _utc(row["first_sent"]),
        _utc(row["last_sent"]), str(row["fingerprint"]),
    )  # fmt: skip


def _utc(value: datetime) -> datetime:
    """sqlite returns naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
