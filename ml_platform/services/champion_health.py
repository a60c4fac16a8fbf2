"""Champion health: a collection's champion re-scored on the labels it never saw.

The fresh evaluation set is chosen by time, not by the training data fingerprint (a sha256
cannot be inverted into the images it covers): the labels that arrived or changed after the
champion's model version was created (`store.fresh_labels`). Training reads its labels before
the version is created, so the set never holds a label the champion trained on. Once the set
reaches `min_fresh_labels` with both members and rejections, the champion is scored
(`learning.health_metrics`), its newest fresh labels are tested against its out-of-fold
predictions for a label shift (`services.label_shift`: a WARN of its own, so a few members
from another class are caught before the AP of the whole fresh set moves), and the
evaluation is logged as an MLflow run in the
`crawlr-collection-health` experiment, tagged with the model name and version, its metrics
stepped by the evaluation time (seconds since the epoch) so the MLflow UI plots them over
time. The `champion_health` asset and its check call `evaluate_health`; the check's failure
asks the retrain planner for a training run (`defs/sensors.health_retrain_sensor`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from mlflow import MlflowClient
from numpy.typing import NDArray

from ml_platform.alerts import Alert, AlertConfig, AlertKind, Severity, alert_check, links_of
from ml_platform.domain import Collection
from ml_platform.learning.health_metrics import (
    HealthFigures,
    HealthLimits,
    HealthStatus,
    decide_health,
    health_figures,
)
from ml_platform.learning.label_shift import LabelShiftTest, label_shift_decision
from ml_platform.model_registry.artifacts import ensure_experiment
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.loading import load_python_model
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.health_history import HEALTH_EXPERIMENT, HealthRunTag, evaluation_times
from ml_platform.services.label_shift import fresh_label_shift
from ml_platform.services.training_data import load_focus
from ml_platform.settings import Settings
from ml_platform.store.alert_log import AlertLog
from ml_platform.store.fresh_labels import fresh_labels
from ml_platform.store.layout import Layout

log = logging.getLogger(__name__)
HEALTH_ASSET = "champion_health"


@dataclass(frozen=True)
class HealthConfig:
    """`min_fresh_labels` is also the label-shift test's fallback window (the newest that many
    fresh labels, until two rounds of labels follow evaluations), `alpha` its level."""

    min_fresh_labels: int
    limits: HealthLimits
    alpha: float = Settings.model_fields["health_alpha"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthConfig:
        return cls(
            settings.health_min_fresh_labels,
            HealthLimits(settings.health_max_ap_drop, settings.health_ap_floor),
            settings.health_alpha,
        )


@dataclass(frozen=True)
class HealthReport:
    """One evaluation of one collection's champion (or why there was none)."""

    collection_id: int
    status: HealthStatus
    reason: str
    evaluated_at: datetime
    champion_version: str | None = None
    cv_ap: float | None = None
    n_fresh: int = 0
    figures: HealthFigures | None = None
    run_id: str | None = None  # the MLflow run of the evaluation
    experiment_id: str | None = None
    label_shift: LabelShiftTest | None = None  # None: not run (no OOF predictions kept)
    label_shift_level: float | None = None

    @property
    def step(self) -> int:
        """The MLflow metric step: the evaluation time in seconds since the epoch."""
        return int(self.evaluated_at.timestamp())

    def metrics(self) -> dict[str, float]:
        """Every figure of the evaluation: fresh AP and the rest, the label-shift test, the
        training CV AP (MLflow metrics, check metadata, alert figures)."""
        out = dict(self.figures.as_metrics()) if self.figures else {}
        if self.label_shift is not None and self.label_shift_level is not None:
            out |= {**self.label_shift.as_metrics(), "label_shift_level": self.label_shift_level}
        if self.cv_ap is not None:
            out["cv_oof_average_precision"] = self.cv_ap
        return out


@dataclass(frozen=True)
class FreshSet:
    image_ids: NDArray[np.int64]
    X: NDArray[np.float32]
    y: NDArray[np.int64]

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())


def fresh_set(layout: Layout, collection: Collection, since: datetime, embedder_id: str) -> (
    FreshSet
):  # fmt: skip
    """The fresh labels since `since` that have an embedding of the collection's focus made
    by `embedder_id` (the champion's; vectors of another embedder would not fit it)."""
    assert collection.focus is not None
    labelled = fresh_labels(layout.metadata(), collection.id, since)
    embedded = load_focus(layout, collection.focus)
    if embedded.embedder.model_id != embedder_id or not labelled:
        return FreshSet(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
    rows = [i for i, image_id in enumerate(embedded.ids) if int(image_id) in labelled]
    ids = embedded.ids[rows]
    y = np.asarray([labelled[int(i)] for i in ids], np.int64)
    return FreshSet(ids, embedded.vectors[rows], y)


def evaluate_health(
    client: MlflowClient,
    layout: Layout,
    collection: Collection,
    config: HealthConfig,
    now: datetime | None = None,
    artifact_root: str | None = None,
    artifact_location: str | None = None,
) -> HealthReport:
    """Score the champion on its fresh labels and log the evaluation (nothing is logged when
    there is nothing to score: the report says why). `artifact_root` finds the champion's
    files after the home moved; `artifact_location` is the health experiment's, when new."""
    now = now or datetime.now(UTC)
    cid = collection.id
    champion = get_champion(client, cid)
    if champion is None or collection.focus is None:
        why = "no champion yet" if champion is None else "collection has no focus"
        return HealthReport(cid, HealthStatus.NOT_EVALUATED, why, now)
    embedder = champion.tags.get(VersionTag.EMBEDDER_ID.value, "")
    fresh = fresh_set(layout, collection, champion.created_at, embedder)
    cv_ap = cv_average_precision(champion)
    base = HealthReport(cid, HealthStatus.NOT_EVALUATED, "", now, champion.version, cv_ap,
                        int(fresh.y.size))  # fmt: skip
    missing = too_few(fresh, config.min_fresh_labels)
    if missing:
        return replace(base, reason=f"champion v{champion.version}: {missing}")
    model = load_version(client, champion, artifact_root)
    scores = np.asarray(model.estimator.predict_proba(fresh.X), np.float64)[:, 1]
    figures = health_figures(fresh.y, scores, model.threshold, embeddings=fresh.X)
    earlier = evaluation_times(client, champion)
    shift = fresh_label_shift(layout, cid, champion, (fresh.image_ids, fresh.y, scores),
                              config.min_fresh_labels, earlier)  # fmt: skip
    decision = label_shift_decision(decide_health(figures, cv_ap, config.limits), shift,
                                    config.alpha)  # fmt: skip
    report = replace(base, status=decision.status, reason=decision.reason, figures=figures,
                     label_shift=shift, label_shift_level=config.alpha)  # fmt: skip
    experiment_id, run_id = log_health_run(client, champion, report, artifact_location)
    return replace(report, run_id=run_id, experiment_id=experiment_id)


def too_few(fresh: FreshSet, minimum: int) -> str:
    """Why `fresh` cannot be scored yet, or "" when it can."""
    n = int(fresh.y.size)
    if n < minimum:
        return f"{n} fresh labels with embeddings; evaluated from {minimum}"
    if fresh.n_pos in (0, n):
        return f"{n} fresh labels, all {'members' if fresh.n_pos else 'rejections'}; AP needs both"
    return ""


def cv_average_precision(champion: ModelVersionInfo) -> float | None:
    """The out-of-fold AP training recorded (the figure the promotion gate compares)."""
    raw = champion.tags.get(VersionTag.CV_OOF_AVERAGE_PRECISION.value)
    try:
        return None if raw is None else float(raw)
    except ValueError:  # "unknown" on a legacy import
        return None


def load_version(
    client: MlflowClient, version: ModelVersionInfo, artifact_root: str | None
) -> CollectionClassifierModel:
    """That exact version (not whatever the alias points at by the time it loads)."""
    return load_python_model(
        client, version.name, version.version, CollectionClassifierModel, artifact_root
    )


def log_health_run(
    client: MlflowClient,
    champion: ModelVersionInfo,
    report: HealthReport,
    artifact_location: str | None = None,
) -> tuple[str, str]:
    """One MLflow run per evaluation, tagged with the model version it scored; the version
    gets the run's id and status as tags too. Returns (experiment id, run id)."""
    assert report.figures is not None
    experiment_id = ensure_experiment(client, HEALTH_EXPERIMENT, artifact_location)
    tags = {
        HealthRunTag.MODEL_NAME: champion.name,
        HealthRunTag.MODEL_VERSION: champion.version,
        HealthRunTag.COLLECTION_ID: str(report.collection_id),
        HealthRunTag.STATUS: report.status.value,
        "mlflow.note.content": report.reason,
    }
    millis = int(report.evaluated_at.timestamp() * 1000)
    name = f"{champion.name}-v{champion.version}-health"
    run_id = str(client.create_run(experiment_id, millis, tags, name).info.run_id)
    metrics = {**report.metrics(), "n_fresh": float(report.n_fresh)}
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, timestamp=millis, step=report.step)
    client.set_terminated(run_id, end_time=millis)
    client.set_model_version_tag(champion.name, champion.version, "health_status",
                                 report.status.value)  # fmt: skip
    client.set_model_version_tag(champion.name, champion.version, "health_run_id", run_id)
    return experiment_id, run_id


def alert_health(
    alerts: AlertLog, config: AlertConfig, report: HealthReport, dagster_run_id: str | None
) -> str:
    """Alert on the evaluation of one champion version (the subject): once when its check
    starts failing, `resolved` when it passes again (`alert_check`); a champion not evaluated
    changes nothing. Returns what the alert did."""
    if report.status is HealthStatus.NOT_EVALUATED or report.champion_version is None:
        return "none (not evaluated)"
    subject = f"collection {report.collection_id} v{report.champion_version}"
    severity = Severity(report.status.value) if report.status.failing else None
    return alert_check(alerts, config, subject, severity,
                       health_alert(report, config, dagster_run_id))  # fmt: skip


def health_alert(report: HealthReport, config: AlertConfig, dagster_run_id: str | None) -> Alert:
    """The alert of an evaluation: figures, versions and links to both UIs."""
    ui, name = links_of(config), model_name(report.collection_id)
    links = {"dagster_asset": ui.dagster_asset(HEALTH_ASSET)}
    if dagster_run_id:
        links["dagster_run"] = ui.dagster_run(dagster_run_id)
    if report.champion_version:
        links["mlflow_version"] = ui.mlflow_version(name, report.champion_version)
    if report.run_id and report.experiment_id:
        links["mlflow_run"] = ui.mlflow_run(report.experiment_id, report.run_id)
    figures = report.metrics()
    return Alert(
        kind=AlertKind.HEALTH_CHECK_FAILED,
        summary=f"{name} champion v{report.champion_version} {report.status.value}: "
        f"{report.reason}",
        collection_id=report.collection_id,
        model=name,
        versions={"champion": report.champion_version},
        figures=figures,
        links=links,
        at=report.evaluated_at,
    )
