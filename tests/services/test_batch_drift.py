"""The batch drift report (which collections a drifted batch concerns, its status and alert),
the per-batch drift table on a real local store, and the retrain rule for drifted batches."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_platform.alerts import AlertConfig, AlertKind
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.services.batch_drift import (
    BatchDriftReport,
    DriftStatus,
    drift_alert,
    drift_history,
    series_name,
)
from ml_platform.services.retraining import RetrainPolicy, batch_drifted, plan_retraining
from ml_platform.settings import Settings
from ml_platform.store.drift_table import (
    DriftRow,
    batches_registered_before,
    read_drift,
    write_drift,
)
from ml_platform.store.layout import Layout

FOCUS = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
AT = datetime(2026, 1, 2, tzinfo=UTC)


def row(cid: int | None, p: float, level: float = 0.01, focus: str = FOCUS.key) -> DriftRow:
    return DriftRow("b1", focus, cid, None if cid is None else "3", 0.2, p, level, 20, 80,
                    p < level, f"test {cid} p={p}")  # fmt: skip


def report(*rows: DriftRow) -> BatchDriftReport:
    return BatchDriftReport("b1", rows, AT, {FOCUS.key: (4, 5)})


def test_a_drifted_embedding_test_concerns_every_champion_of_its_focus() -> None:
    drifted = report(row(None, 0.0001), row(4, 0.5), row(5, 0.6))
    assert drifted.status is DriftStatus.DRIFTED and drifted.drifted_collections == (4, 5)
    assert drifted.reason == "test None p=0.0001"


def test_a_drifted_share_concerns_its_own_collection_only() -> None:
    drifted = report(row(None, 0.4), row(4, 0.5), row(5, 0.001))
    assert drifted.drifted_collections == (5,)


def test_a_batch_whose_tests_did_not_run_is_not_evaluated_and_a_clean_one_ok() -> None:
    assert report(row(None, math.nan)).status is DriftStatus.NOT_EVALUATED
    assert report().status is DriftStatus.NOT_EVALUATED
    assert report(row(None, 0.4), row(4, 0.3)).status is DriftStatus.OK


def test_the_alert_names_the_batch_the_collection_and_each_drifted_figure() -> None:
    config = AlertConfig.from_settings(Settings(alert_webhook_url="http://127.0.0.1:9/x"))
    alert = drift_alert(report(row(None, 0.5), row(5, 0.001)), config, "run-1")
    assert alert.kind is AlertKind.DRIFT_CHECK_FAILED and alert.collection_id == 5
    assert alert.versions == {"batch": "b1", "collection_5": "3"}
    assert alert.figures == {"collection 5 share p_value": 0.001,
                             "collection 5 share statistic": 0.2}  # fmt: skip
    assert alert.links["dagster_run"].endswith("/runs/run-1")


def test_series_are_named_by_focus_or_collection() -> None:
    assert series_name(row(None, 0.1)) == f"embeddings {FOCUS.key}"
    assert series_name(row(9, 0.1)) == "collection 9 share"


def test_the_drift_table_round_trips_a_test_that_did_not_run(tmp_path: Path) -> None:
    layout = Layout.for_settings(Settings(home=tmp_path))
    rows = [row(None, math.nan), row(4, 0.25)]
    write_drift(layout, "b1", rows)
    back = read_drift(layout, "b1")
    assert back[1] == rows[1] and back[0].collection_id is None
    assert math.isnan(back[0].p_value) and back[0].statistic == 0.2
    assert read_drift(layout, "b2") == []


def test_batches_before_a_champion_are_its_reference_and_history_is_in_order(
    tmp_path: Path,
) -> None:
    layout = Layout.for_settings(Settings(home=tmp_path))
    db = layout.metadata()
    db.register_batch("b1", [])
    db.register_batch("b2", [])
    registered = batches_registered_before(db, datetime.now(UTC) + timedelta(seconds=1))
    assert registered == ["b1", "b2"]
    assert batches_registered_before(db, datetime(2000, 1, 1, tzinfo=UTC)) == []
    write_drift(layout, "b2", [row(4, 0.3)])
    assert [(b, len(r)) for b, r in drift_history(layout, "b2")] == [("b1", 0), ("b2", 1)]


def test_a_drifted_batch_retrains_only_collections_the_classifier_would_train() -> None:
    usable = Collection(4, "cats", FOCUS)
    other = Collection(6, "dogs", FOCUS)
    labels = {4: (12, 30, 1), 6: (2, 30, 1)}  # 6 has too few members to train
    drifted = batch_drifted({4: "b9", 6: "b9"})
    (retrain,) = plan_retraining([usable, other], labels, RetrainPolicy(), drifted)
    assert retrain.collection_id == 4 and "batch b9 drifted" in retrain.reason
    assert plan_retraining([usable], labels, RetrainPolicy(), batch_drifted({})) == []
