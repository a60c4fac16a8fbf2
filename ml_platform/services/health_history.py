"""The logged champion-health evaluations, read back: a collection's for the trend plot, a
version's times for the label-shift test's window (`services.label_shift`). The runs are
written by `services.champion_health.log_health_run`, in `HEALTH_EXPERIMENT`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient

from ml_platform.model_registry.collection.naming import model_name
from ml_platform.model_registry.versions import ModelVersionInfo

HEALTH_EXPERIMENT = "crawlr-collection-health"


class HealthRunTag:
    MODEL_NAME = "model_name"
    MODEL_VERSION = "model_version"
    COLLECTION_ID = "collection_id"
    STATUS = "health_status"


@dataclass(frozen=True)
class HealthPoint:
    """One past evaluation, for the trend plot."""

    evaluated_at: datetime
    version: str
    average_precision: float
    ap_low: float
    ap_high: float
    cv_ap: float | None


def health_history(client: MlflowClient, collection_id: int, limit: int = 200) -> list[HealthPoint]:
    """The logged evaluations of a collection's champions, oldest first."""
    experiment = client.get_experiment_by_name(HEALTH_EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{HealthRunTag.MODEL_NAME} = '{model_name(collection_id)}'",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    points = [_point(r.data.metrics, r.data.tags, r.info.start_time) for r in runs]
    return sorted(points, key=lambda p: p.evaluated_at)


def evaluation_times(client: MlflowClient, version: ModelVersionInfo, limit: int = 200) -> (
    list[datetime]
):  # fmt: skip
    """When the version's logged evaluations were made, oldest first; the newest `limit` of
    them. A run's start time is the evaluation time in whole milliseconds, and an evaluation
    reads its labels after that time, so each is the end of its millisecond: a label made
    within it was seen by that evaluation."""
    experiment = client.get_experiment_by_name(HEALTH_EXPERIMENT)
    if experiment is None:
        return []
    name = f"tags.{HealthRunTag.MODEL_NAME} = '{version.name}'"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"{name} and tags.{HealthRunTag.MODEL_VERSION} = '{version.version}'",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return sorted(datetime.fromtimestamp((r.info.start_time + 1) / 1000, tz=UTC) for r in runs)


def _point(metrics: dict[str, float], tags: dict[str, str], start_ms: int) -> HealthPoint:
    return HealthPoint(
        evaluated_at=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
        version=tags.get(HealthRunTag.MODEL_VERSION, "?"),
        average_precision=metrics["fresh_average_precision"],
        ap_low=metrics["fresh_ap_low"],
        ap_high=metrics["fresh_ap_high"],
        cv_ap=metrics.get("cv_oof_average_precision"),
    )
