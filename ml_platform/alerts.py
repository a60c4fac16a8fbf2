"""Alerts out: a signed JSON POST to `ML_PLATFORM_ALERT_WEBHOOK_URL`.

Sent on a failing champion-health check (`champion_health` asset), a drifted batch
(`batch_drift` asset), a failed run
(`defs/sensors.alert_on_run_failure`) and every champion change (promote, rollback, the
promotion gate's promotion: `model_registry.aliases._move_champion`). The body is one JSON
object (`Alert.body`); with `ML_PLATFORM_ALERT_WEBHOOK_SECRET` set, the header
`X-ML-Platform-Signature: sha256=<hex HMAC-SHA256 of the body>` signs it. Each POST has a
timeout and one retry; a receiver that is down, slow or answers an error is logged and never
fails the caller (`send_alert` returns whether it was delivered).

A failing check is a state, not an event: `alert_check` sends its alert once when the check
starts failing for a subject (a collection's champion version, a batch), again only after
`ML_PLATFORM_ALERT_REPEAT_AFTER_HOURS` or when the severity rises (WARN -> ERROR), and a
`resolved` alert when it passes again (`decide_alert`; what was sent is kept in the metadata
database, `store.alert_log`). Champion changes and failed runs are events: always sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import httpx
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from ml_platform.model_registry.collection.naming import VersionTag, collection_id_of
from ml_platform.settings import Settings
from ml_platform.store.alert_log import AlertLog, SentAlert

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-ML-Platform-Signature"
RETRIES = 1
RETRY_DELAY_S = 0.5


class AlertKind(StrEnum):
    HEALTH_CHECK_FAILED = "health_check_failed"
    DRIFT_CHECK_FAILED = "drift_check_failed"
    RUN_FAILED = "run_failed"
    CHAMPION_CHANGED = "champion_changed"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"  # the check passes again for the subject


class Severity(StrEnum):
    """A failing check's severity, as its asset check reports it."""

    WARN = "warn"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return 2 if self is Severity.ERROR else 1


@dataclass(frozen=True)
class Alert:
    """What happened, to which collection and versions, its figures and where to look."""

    kind: AlertKind
    summary: str
    collection_id: int | None = None
    model: str | None = None
    versions: Mapping[str, str | None] = field(default_factory=dict)
    figures: Mapping[str, float] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: AlertStatus = AlertStatus.FIRING
    severity: Severity | None = None  # a check's alert: its severity; events: None

    def body(self) -> bytes:
        payload = {
            "kind": self.kind.value,
            "status": self.status.value,
            "severity": None if self.severity is None else self.severity.value,
            "summary": self.summary,
            "collection_id": self.collection_id,
            "model": self.model,
            "versions": dict(self.versions),
            "figures": dict(self.figures),
            "links": dict(self.links),
            "at": self.at.isoformat(timespec="seconds"),
        }
        return json.dumps(payload, sort_keys=True).encode()


@dataclass(frozen=True)
class AlertConfig:
    url: str | None
    secret: str | None
    timeout_s: float
    dagster_ui_url: str
    mlflow_ui_url: str
    repeat_after: timedelta = timedelta(
        hours=Settings.model_fields["alert_repeat_after_hours"].default
    )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AlertConfig:
        s = settings or Settings()
        return cls(s.alert_webhook_url, s.alert_webhook_secret, s.alert_timeout_s,
                   s.dagster_ui_url.rstrip("/"), s.mlflow_ui_url.rstrip("/"),
                   timedelta(hours=s.alert_repeat_after_hours))  # fmt: skip


@dataclass(frozen=True)
class UiLinks:
    """Links into the Dagster and MLflow UIs."""

    dagster: str
    mlflow: str

    def dagster_run(self, run_id: str) -> str:
        return f"{self.dagster}/runs/{run_id}"

    def dagster_asset(self, asset: str) -> str:
        return f"{self.dagster}/assets/{asset}"

    def mlflow_version(self, name: str, version: str) -> str:
        return f"{self.mlflow}/#/models/{name}/versions/{version}"

    def mlflow_run(self, experiment_id: str, run_id: str) -> str:
        return f"{self.mlflow}/#/experiments/{experiment_id}/runs/{run_id}"


def links_of(config: AlertConfig) -> UiLinks:
    return UiLinks(config.dagster_ui_url, config.mlflow_ui_url)


def signature(body: bytes, secret: str) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 of the exact body bytes under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_alert(alert: Alert, config: AlertConfig) -> bool:
    """POST `alert` (signed where a secret is set); True when the receiver answered 2xx.
    Unset URL: nothing is sent (False). Failures are logged, never raised."""
    if not config.url:
        return False
    body = alert.body()
    headers = {"Content-Type": "application/json"}
    if config.secret:
        headers[SIGNATURE_HEADER] = signature(body, config.secret)
    for attempt in range(1 + RETRIES):
        problem = _post(config.url, body, headers, config.timeout_s)
        if problem is None:
            log.info("alert %s delivered: %s", alert.kind.value, alert.summary)
            return True
        log.warning("alert %s not delivered (try %d of %d): %s", alert.kind.value, attempt + 1,
                    1 + RETRIES, problem)  # fmt: skip
        if attempt < RETRIES:
            time.sleep(RETRY_DELAY_S)
    return False


class Verdict(StrEnum):
    """What to do with a check's outcome for one subject, given what was last sent."""

    SEND = "send"  # it started failing
    ESCALATE = "escalate"  # its severity rose
    REPEAT = "repeat"  # still failing, the quiet period is over
    SUPPRESS = "suppress"  # still failing within the quiet period: nothing is sent
    RESOLVE = "resolve"  # passing again after an alert
    QUIET = "quiet"  # passing, and nothing was sent

    @property
    def sends(self) -> bool:
        return self not in (Verdict.SUPPRESS, Verdict.QUIET)


def decide_alert(
    last: SentAlert | None, severity: Severity | None, now: datetime, repeat_after: timedelta
) -> Verdict:
    """`severity` None: the check passes. A fall in severity (ERROR -> WARN) is no news."""
    if severity is None:
        return Verdict.QUIET if last is None else Verdict.RESOLVE
    if last is None:
        return Verdict.SEND
    if severity.rank > Severity(last.severity).rank:
        return Verdict.ESCALATE
    return Verdict.REPEAT if now - last.last_sent >= repeat_after else Verdict.SUPPRESS


def alert_check(alerts: AlertLog, config: AlertConfig, subject: str, severity: Severity | None,
                alert: Alert) -> str:  # fmt: skip
    """Send `alert` (a check's outcome for `subject` at `alert.at`; `severity` None: it
    passes) as `decide_alert` says, and record what was delivered. Returns the line for the
    check's metadata: `sent`, `repeat suppressed (last sent ...)`, `resolved sent`, ..."""
    if not config.url:
        return "off (no ML_PLATFORM_ALERT_WEBHOOK_URL)"
    kind = alert.kind.value
    last = alerts.last(kind, subject)
    verdict = decide_alert(last, severity, alert.at, config.repeat_after)
    if not verdict.sends:
        if last is not None:
            log.info("alert %s for %s: repeat suppressed (last sent %s)", kind, subject,
                     last.last_sent.isoformat(timespec="seconds"))  # fmt: skip
        return _said(verdict, last)
    status = AlertStatus.RESOLVED if verdict is Verdict.RESOLVE else AlertStatus.FIRING
    out = replace(alert, status=status, severity=severity)
    if not send_alert(out, config):
        return f"{verdict.value}: not delivered (see the log)"
    if severity is None:
        alerts.clear(kind, subject)
    else:
        alerts.record(kind, subject, severity.value, fingerprint(out), alert.at)
    return _said(verdict, last)


def _said(verdict: Verdict, last: SentAlert | None) -> str:
    if verdict is Verdict.SUPPRESS and last is not None:
        return f"repeat suppressed (last sent {last.last_sent.isoformat(timespec='seconds')})"
    return {Verdict.QUIET: "none", Verdict.RESOLVE: "resolved sent",
            Verdict.ESCALATE: "sent (severity rose)", Verdict.REPEAT: "sent (repeat)"}.get(
        verdict, "sent")  # fmt: skip


def fingerprint(alert: Alert) -> str:
    """What an alert said (kind, status, severity, summary), as 16 hex digits."""
    said = f"{alert.kind.value}|{alert.status.value}|{alert.severity}|{alert.summary}"
    return hashlib.sha256(said.encode()).hexdigest()[:16]


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> str | None:
    """None on a 2xx answer, else what went wrong."""
    try:
        response = httpx.post(url, content=body, headers=dict(headers), timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def notify_champion_change(
    client: MlflowClient, name: str, version: str, previous: str | None, action: str, reason: str
) -> bool:
    """The alert of one champion change (called where the alias moves). Reading the
    version's figures from the registry is part of the alert: its failure is logged too."""
    try:
        config = AlertConfig.from_settings()
    except ValidationError as exc:  # the alias has moved already: never fail the promotion
        log.warning("champion change of %s not alerted: settings invalid: %s", name, exc)
        return False
    if not config.url:
        return False
    try:
        tags = dict(client.get_model_version(name, version).tags)
    except MlflowException as exc:
        log.warning("champion change of %s: version %s tags not read: %s", name, version, exc)
        tags = {}
    return send_alert(champion_alert(name, version, previous, action, reason, tags, config),
                      config)  # fmt: skip


def champion_alert(
    name: str,
    version: str,
    previous: str | None,
    action: str,
    reason: str,
    tags: Mapping[str, str],
    config: AlertConfig,
) -> Alert:
    ui = links_of(config)
    links = {"mlflow_version": ui.mlflow_version(name, version)}
    run_id = tags.get(VersionTag.DAGSTER_RUN_ID.value)
    if run_id:
        links["dagster_run"] = ui.dagster_run(run_id)
    figures = {key: float(tags[key]) for key in _FIGURE_TAGS if _is_number(tags.get(key))}
    return Alert(
        kind=AlertKind.CHAMPION_CHANGED,
        summary=f"{name}: champion {previous or 'none'} -> {version} ({action}: {reason})",
        collection_id=collection_id_of(name),
        model=name,
        versions={"champion": version, "previous_champion": previous, "action": action},
        figures=figures,
        links=links,
    )


_FIGURE_TAGS = (
    VersionTag.CV_OOF_AVERAGE_PRECISION.value,
    VersionTag.CV_AVERAGE_PRECISION_MEAN.value,
    VersionTag.THRESHOLD.value,
)


def _is_number(raw: str | None) -> bool:
    try:
        return raw is not None and float(raw) == float(raw)
    except ValueError:
        return False


def run_failure_alert(
    run_id: str,
    job_name: str,
    partition: str | None,
    message: str,
    config: AlertConfig,
    collection_jobs: tuple[str, ...] = (),
) -> Alert:
    """The alert of a failed Dagster run; a partition of a job in `collection_jobs` (per
    collection) names its collection."""
    collection = (
        int(partition) if partition and partition.isdigit() and job_name in collection_jobs
        else None
    )  # fmt: skip
    where = f" partition {partition}" if partition else ""
    return Alert(
        kind=AlertKind.RUN_FAILED,
        summary=f"run {run_id[:8]} of {job_name}{where} failed: {message[:500]}",
        collection_id=collection,
        links={"dagster_run": links_of(config).dagster_run(run_id)},
    )
