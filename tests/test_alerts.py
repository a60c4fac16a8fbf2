"""Alerts POSTed to a real receiver on 127.0.0.1 that checks the HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ml_platform.alerts import (
    Alert,
    AlertConfig,
    AlertKind,
    Severity,
    Verdict,
    alert_check,
    champion_alert,
    decide_alert,
    notify_champion_change,
    run_failure_alert,
    send_alert,
    signature,
)
from ml_platform.store.alert_log import AlertLog, SentAlert
from ml_platform.store.metadata import MetadataDB
from tests.alert_receiver import alert_receiver


def config(url: str | None, secret: str | None = "s3cret") -> AlertConfig:
    return AlertConfig(url, secret, 2.0, "http://dagster:3000", "http://mlflow:5000")


ALERT = Alert(AlertKind.HEALTH_CHECK_FAILED, "collection 9 fails", 9, "crawlr-collection-9",
              {"champion": "1"}, {"fresh_average_precision": 0.31})  # fmt: skip


def test_an_alert_arrives_signed_with_its_figures() -> None:
    with alert_receiver() as receiver:
        assert send_alert(ALERT, config(receiver.url)) is True
    (got,) = receiver.received
    assert got.signature_valid
    assert got.body["kind"] == "health_check_failed" and got.body["collection_id"] == 9
    assert got.body["figures"] == {"fresh_average_precision": 0.31}


def test_a_wrong_secret_is_caught_by_the_receiver_and_reported_undelivered() -> None:
    with alert_receiver(secret="theirs") as receiver:
        assert send_alert(ALERT, config(receiver.url, "ours")) is False
    assert receiver.received and not any(r.signature_valid for r in receiver.received)


def test_an_error_answer_is_retried_once() -> None:
    with alert_receiver() as receiver:
        receiver.fail_next = 1
        assert send_alert(ALERT, config(receiver.url)) is True
    assert len(receiver.received) == 1 and receiver.received[0].signature_valid


def test_a_receiver_that_is_down_is_logged_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, "ml_platform.alerts"):
        assert send_alert(ALERT, config(f"http://127.0.0.1:{port}/hook")) is False
    assert sum("not delivered" in r.getMessage() for r in caplog.records) == 2  # try + retry


def test_without_a_url_nothing_is_sent() -> None:
    assert send_alert(ALERT, config(None)) is False


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"k", b'{"a": 1}', hashlib.sha256).hexdigest()
    assert signature(b'{"a": 1}', "k") == f"sha256={expected}"
    assert signature(b'{"a": 2}', "k") != f"sha256={expected}"


def test_a_champion_change_names_versions_figures_and_links() -> None:
    tags = {"cv_oof_average_precision": "0.93", "threshold": "0.4", "dagster_run_id": "abc"}
    alert = champion_alert("crawlr-collection-7", "3", "2", "rollback", "bad", tags,
                           config("http://x"))  # fmt: skip
    assert alert.collection_id == 7 and alert.versions["previous_champion"] == "2"
    assert alert.figures == {"cv_oof_average_precision": 0.93, "threshold": 0.4}
    assert alert.links == {"mlflow_version": "http://mlflow:5000/#/models/crawlr-collection-7/"
                           "versions/3", "dagster_run": "http://dagster:3000/runs/abc"}  # fmt: skip


def test_a_failed_run_of_a_collection_job_names_the_collection() -> None:
    alert = run_failure_alert("0123456789", "training_job", "7", "boom", config("http://x"),
                              ("training_job",))  # fmt: skip
    assert alert.collection_id == 7 and "training_job partition 7 failed: boom" in alert.summary
    other = run_failure_alert("0123456789", "ingest_job", "7", "boom", config("http://x"))
    assert other.collection_id is None


def test_invalid_settings_never_fail_the_promotion_that_moved_the_alias(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", "not a url")
    with caplog.at_level(logging.WARNING, "ml_platform.alerts"):
        client = MlflowClient(
            f"sqlite:///{tmp_path / 'unused.db'}"
        )  # never reached: settings fail first
        sent = notify_champion_change(client, "crawlr-collection-7", "2", "1", "promote", "x")
    assert sent is False
    assert "settings invalid" in caplog.text


T0 = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)
DAY = timedelta(hours=24)


def sent(severity: str, hours_ago: float) -> SentAlert:
    at = T0 - timedelta(hours=hours_ago)
    return SentAlert("health_check_failed", "collection 9 v1", severity, at, at, "f")


@pytest.mark.parametrize(
    ("last", "severity", "verdict"),
    [
        (None, Severity.WARN, Verdict.SEND),
        (sent("warn", 1), Severity.WARN, Verdict.SUPPRESS),
        (sent("warn", 1), Severity.ERROR, Verdict.ESCALATE),
        (sent("error", 1), Severity.WARN, Verdict.SUPPRESS),
        (sent("warn", 24), Severity.WARN, Verdict.REPEAT),
        (sent("warn", 1), None, Verdict.RESOLVE),
        (None, None, Verdict.QUIET),
    ],
)
def test_decide_alert_sends_news_and_suppresses_repeats_within_the_quiet_period(
    last: SentAlert | None, severity: Severity | None, verdict: Verdict
) -> None:
    assert decide_alert(last, severity, T0, DAY) is verdict


def test_a_failing_check_alerts_once_then_on_escalation_repeat_and_resolution(
    tmp_path: Path,
) -> None:
    alerts = AlertLog(MetadataDB(f"sqlite:///{tmp_path / 'metadata.db'}"))
    subject, failing = "collection 9 v1", replace(ALERT, at=T0)

    def evaluate(severity: Severity | None, hours: float) -> str:
        at = T0 + timedelta(hours=hours)
        return alert_check(alerts, config(receiver.url), subject, severity, replace(failing, at=at))

    with alert_receiver() as receiver:
        assert evaluate(Severity.WARN, 0) == "sent"
        assert evaluate(Severity.WARN, 1).startswith("repeat suppressed (last sent 2026-12-07T04")
        assert evaluate(Severity.ERROR, 2) == "sent (severity rose)"
        assert evaluate(Severity.WARN, 3).startswith("repeat suppressed")
        assert evaluate(Severity.WARN, 26) == "sent (repeat)"
        assert evaluate(None, 27) == "resolved sent"
        assert evaluate(None, 28) == "none"
    said = [(r.body["status"], r.body["severity"]) for r in receiver.received]
    assert said == [("firing", "warn"), ("firing", "error"), ("firing", "warn"), ("resolved", None)]
    assert all(r.signature_valid for r in receiver.received)
    assert alerts.last("health_check_failed", subject) is None


def test_an_undelivered_alert_is_not_recorded_and_goes_out_at_the_next_evaluation(
    tmp_path: Path,
) -> None:
    alerts = AlertLog(MetadataDB(f"sqlite:///{tmp_path / 'metadata.db'}"))
    with alert_receiver() as receiver:
        receiver.fail_next = 2  # the try and its retry
        first = alert_check(alerts, config(receiver.url), "batch b3", Severity.WARN, ALERT)
        second = alert_check(alerts, config(receiver.url), "batch b3", Severity.WARN, ALERT)
    assert first == "send: not delivered (see the log)" and second == "sent"
    assert len(receiver.received) == 1
