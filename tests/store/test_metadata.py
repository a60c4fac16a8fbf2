"""The metadata database on sqlite and on a real PostgreSQL server: the same behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ml_platform.domain import AttemptStatus, ImageRecord, Stage, WeightsStatus
from ml_platform.store.accepted_labels import SUGGESTION_SOURCE, AcceptedLabel, AcceptedLabels
from ml_platform.store.alert_log import AlertLog
from ml_platform.store.metadata import BatchConflictError, MetadataDB, meta
from ml_platform.store.migrations import add_missing_columns

BASE = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(url: str) -> MetadataDB:
    return MetadataDB(url)


def record(image_id: int, pet: int | None = None, members: tuple[int, ...] = ()) -> ImageRecord:
    return ImageRecord(image_id, f"/media/{image_id}.jpg", BASE, pet, members, ())


def test_an_image_enters_one_batch_only(db: MetadataDB) -> None:
    db.register_batch("b1", [record(1), record(2)])
    db.register_batch("b1", [record(1), record(2)])  # the same batch again: a no-op
    with pytest.raises(BatchConflictError, match="already in another batch"):
        db.register_batch("b2", [record(2), record(3)])
    assert db.batch_keys() == ["b1"] and db.unassigned([1, 2, 3]) == {3}
    with pytest.raises(ValueError, match="twice"):
        db.register_batch("b3", [record(4), record(4)])


def test_the_index_finds_the_batches_of_pets_and_collections(db: MetadataDB) -> None:
    db.register_batch("b1", [record(1, pet=7, members=(5,)), record(2, pet=8)])
    db.register_batch("b2", [record(3, pet=7), record(4, pet=9, members=(5, 6))])
    assert db.batches_of_pets([7]) == ["b1", "b2"] and db.batches_of_pets([8]) == ["b1"]
    assert db.batches_of_collections([6]) == ["b2"]
    before = db.label_fingerprints()
    assert before[5][0] == 2 and before[6][0] == 1
    db.register_batch("b3", [record(5, members=(6,))])
    assert db.label_fingerprints()[6] != before[6] and db.label_fingerprints()[5] == before[5]


def test_failed_downloads_back_off_then_quarantine_and_can_be_requeued(db: MetadataDB) -> None:
    db.register_batch("b1", [record(1), record(2), record(3)])
    stage = Stage.CATALOG.value
    failures = {2: ("timeout", True), 3: ("not an image", False)}
    db.record_outcomes(stage, [1], failures, max_attempts=2, backoff_s=60)
    assert db.due_retries(stage) == {}  # backing off
    assert db.due_retries(stage, datetime.now(UTC) + timedelta(seconds=61)) == {"b1": [2]}
    assert db.settled(stage, [1, 2, 3]) == {3}  # permanent failures are not retried
    db.record_outcomes(stage, [], {2: ("timeout", True)}, max_attempts=2, backoff_s=60)
    assert db.attempt_status(stage, 2) is AttemptStatus.QUARANTINED
    assert db.requeue(stage, [AttemptStatus.QUARANTINED]) == [2]
    assert db.due_retries(stage) == {"b1": [2]}


def test_a_claim_is_exclusive_until_released(db: MetadataDB) -> None:
    assert db.claim("ingest_job:b1", lease_s=60, owner="elsewhere:1")
    assert not db.claim("ingest_job:b1", lease_s=60, owner="elsewhere:2")
    db.release("ingest_job:b1", owner="elsewhere:1")
    assert db.claim("ingest_job:b1", lease_s=60, owner="elsewhere:2")
    assert db.claim("expired", lease_s=-1, owner="elsewhere:3")
    assert db.claim("expired", lease_s=60, owner="elsewhere:4")  # a lapsed lease is taken


def test_the_feed_cursor_round_trips(db: MetadataDB) -> None:
    assert db.get_cursor("image_feed") is None
    db.set_cursor("image_feed", '{"after": "5"}')
    db.set_cursor("image_feed", '{"after": "9"}')
    assert db.get_cursor("image_feed") == '{"after": "9"}'


def test_accepted_labels_are_replaced_per_image_and_marked_as_suggestions(db: MetadataDB) -> None:
    store = AcceptedLabels(db)
    assert store.accept([]) == 0 and store.labels("pets") == {}
    first = [AcceptedLabel("pets", 7, "beagle", "clip:tiny", 0.8),
             AcceptedLabel("pets", 8, "boxer", "clip:tiny", 0.6),
             AcceptedLabel("cats", 7, "Bengal", "siglip:tiny", 0.9)]  # fmt: skip
    assert store.accept(first) == 3
    store.accept([AcceptedLabel("pets", 7, "basset_hound", "siglip:tiny", 0.7, accepted_at=BASE)])
    assert store.labels("pets") == {7: "basset_hound", 8: "boxer"}
    rows = store.for_dataset("pets")
    assert [r.model for r in rows] == ["siglip:tiny", "clip:tiny"]
    assert {r.source for r in rows} == {SUGGESTION_SOURCE} and rows[0].accepted_at == BASE
    assert rows[1].accepted_at is not None and rows[1].accepted_at.tzinfo is not None
    assert store.labels("cats") == {7: "Bengal"}
    assert {r.weights for r in rows} == {None}  # accepted without a record of the weights


def test_accepted_labels_keep_the_weights_that_suggested_them(db: MetadataDB) -> None:
    store = AcceptedLabels(db)
    store.accept([AcceptedLabel("pets", 7, "beagle", "clip:tiny", 0.8,
                                weights=WeightsStatus.RANDOM),
                  AcceptedLabel("pets", 8, "boxer", "clip:vit", 0.6,
                                weights=WeightsStatus.PRETRAINED)])  # fmt: skip
    assert store.suggested_with("pets") == {7: WeightsStatus.RANDOM, 8: WeightsStatus.PRETRAINED}


def test_a_database_made_before_the_weights_column_gains_it_when_opened(url: str) -> None:
    """A home's database from before `accepted_labels.weights` existed: opened, it has the
    column, its old rows read as unrecorded, and new rows keep their weights."""
    made = MetadataDB(url)  # then set back to the old schema, with a row written under it
    with made.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE accepted_labels DROP COLUMN weights")
        conn.execute(sa.text(
            "INSERT INTO accepted_labels (dataset, image_id, label, source, model, confidence, "
            "accepted_at) VALUES ('pets', 7, 'beagle', :source, 'clip:tiny', 0.8, :at)"
        ), {"source": SUGGESTION_SOURCE, "at": BASE})  # fmt: skip
    made.engine.dispose()
    db = MetadataDB(url)
    store = AcceptedLabels(db)
    assert store.suggested_with("pets") == {7: None} and store.labels("pets") == {7: "beagle"}
    store.accept([AcceptedLabel("pets", 8, "boxer", "clip:tiny", 0.6,
                                weights=WeightsStatus.RANDOM)])  # fmt: skip
    assert store.suggested_with("pets") == {7: None, 8: WeightsStatus.RANDOM}
    assert add_missing_columns(db.engine, meta) == []  # opened again: nothing left to add


def test_the_alert_log_keeps_when_a_failure_began_and_what_was_sent_last(db: MetadataDB) -> None:
    alerts = AlertLog(db)
    alerts.record("drift_check_failed", "batch b3", "warn", "aa", BASE)
    row = alerts.record("drift_check_failed", "batch b3", "error", "bb", BASE + timedelta(days=1))
    assert (row.first_sent, row.last_sent, row.severity, row.fingerprint) == (
        BASE, BASE + timedelta(days=1), "error", "bb")  # fmt: skip
    assert alerts.last("drift_check_failed", "batch b4") is None
    alerts.clear("drift_check_failed", "batch b3")
    assert alerts.last("drift_check_failed", "batch b3") is None


def test_a_database_made_before_the_alert_log_gains_it_when_opened(url: str) -> None:
    made = MetadataDB(url)
    with made.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alert_log")
    made.engine.dispose()
    alerts = AlertLog(MetadataDB(url))
    alerts.record("health_check_failed", "collection 9 v1", "warn", "aa", BASE)
    assert alerts.last("health_check_failed", "collection 9 v1") is not None
