"""`champion_health`: each collection's champion re-scored on the labels it never saw.

The work is `services.champion_health.evaluate_health`; this asset adds the history's trend
plot, the `champion_fresh_ap` check and, when the check fails, an alert
(`ml_platform/alerts.py`). The `health_retrain_sensor` reads the failing status back from this
asset's data versions (`failing_health`) and asks the retrain planner for a training run.
"""

import warnings
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.events import DagsterEventType

from ml_platform.alerts import AlertConfig, links_of
from ml_platform.defs.assets.cluster_pictures import inline_png
from ml_platform.defs.partitions import collection_partitions
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.learning.health_metrics import HealthStatus
from ml_platform.learning.health_plot import trend_png
from ml_platform.services.champion_health import (
    HEALTH_ASSET,
    HealthConfig,
    HealthReport,
    alert_health,
    evaluate_health,
)
from ml_platform.services.health_history import HealthPoint, health_history
from ml_platform.store.alert_log import AlertLog
from ml_platform.store.collections_file import read_collections

CHECK = "champion_fresh_ap"
CHECK_DESCRIPTION = (
    "The champion scored on labels made after its training (ML_PLATFORM_HEALTH_MIN_FRESH_LABELS "
    "at least, members and rejections). WARN when fresh AP is more than "
    "ML_PLATFORM_HEALTH_MAX_AP_DROP below the training CV AP and the bootstrap interval's upper "
    "bound is too; WARN too when the newest ML_PLATFORM_HEALTH_MIN_FRESH_LABELS fresh labels "
    "disagree with the champion more than its out-of-fold labels did (a permutation test of "
    "their log-loss at ML_PLATFORM_HEALTH_ALPHA); ERROR when even the upper bound is below "
    "ML_PLATFORM_HEALTH_AP_FLOOR. A "
    "failing check alerts and asks the retrain planner for a training run; the promotion gate "
    "still decides the champion."
)
SEVERITY = {HealthStatus.ERROR: dg.AssetCheckSeverity.ERROR}

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks, as the gate's
    CHECK_SPEC = dg.AssetCheckSpec(
        CHECK,
        asset=HEALTH_ASSET,
        description=CHECK_DESCRIPTION,
        partitions_def=collection_partitions,
    )


@dg.asset(
    group_name="classifiers",
    partitions_def=collection_partitions,
    deps=["collection_classifier"],
    check_specs=[CHECK_SPEC],
    kinds={"mlflow"},
)
def champion_health(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Re-evaluate the collection's champion on its fresh labels (an MLflow run in
    `crawlr-collection-health` per evaluation), with the trend of every evaluation so far."""
    cid, layout, settings = int(context.partition_key), storage.layout(), storage.settings()
    collection = next((c for c in read_collections(layout) if c.id == cid), None)
    client = mlflow.client()
    report = (
        evaluate_health(
            client, layout, collection, HealthConfig.from_settings(settings),
            artifact_root=mlflow.artifact_root(), artifact_location=mlflow.artifact_location(),
        )
        if collection is not None
        else HealthReport(cid, HealthStatus.NOT_EVALUATED, "not in crawlr_collections (any more)",
                          datetime.now(UTC))
    )  # fmt: skip
    context.log.info("collection %s: %s: %s", cid, report.status.value, report.reason)
    alerts = AlertConfig.from_settings(settings)
    said = alert_health(AlertLog(layout.metadata()), alerts, report, context.run_id)
    context.log.info("collection %s: alert: %s", cid, said)
    history = health_history(client, cid)
    return dg.MaterializeResult(
        metadata=health_metadata(report, history, settings.health_ap_floor, alerts),
        check_results=[check_result(report, said)],
        data_version=dg.DataVersion(f"{report.status.value}.{report.step}"),
    )


def check_result(report: HealthReport, alert: str = "none") -> dg.AssetCheckResult:
    """Failing on WARN and ERROR; a champion not evaluated (too few fresh labels) passes,
    saying so. `alert` says what the alert did (`alert_check`)."""
    return dg.AssetCheckResult(
        check_name=CHECK,
        passed=not report.status.failing,
        severity=SEVERITY.get(report.status, dg.AssetCheckSeverity.WARN),
        description=report.reason,
        metadata={"status": report.status.value, "champion_version": report.champion_version or
                  "none", "n_fresh": report.n_fresh, "alert": alert,
                  **report.metrics()},
    )  # fmt: skip


def health_metadata(
    report: HealthReport,
    history: list[HealthPoint],
    floor: float,
    alerts: AlertConfig,
) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    out: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "status": dg.MetadataValue.text(report.status.value),
        "reason": dg.MetadataValue.text(report.reason),
        "champion_version": dg.MetadataValue.text(report.champion_version or "none"),
        "n_fresh": dg.MetadataValue.int(report.n_fresh),
        "evaluations": dg.MetadataValue.int(len(history)),
    }
    if report.cv_ap is not None:
        out["training_cv_ap"] = dg.MetadataValue.float(report.cv_ap)
    for key, value in report.metrics().items():
        out[key] = dg.MetadataValue.float(value)
    if report.run_id is not None and report.experiment_id is not None:
        url = links_of(alerts).mlflow_run(report.experiment_id, report.run_id)
        out["mlflow_run"] = dg.MetadataValue.url(url)
    if history:
        png = trend_png(
            [p.evaluated_at for p in history], [p.average_precision for p in history],
            [p.ap_low for p in history], [p.ap_high for p in history],
            [p.cv_ap for p in history], title=f"collection {report.collection_id}: fresh AP",
            floor=floor,
        )  # fmt: skip
        out["trend"] = inline_png(png, f"fresh AP over {len(history)} evaluations")
    return out


def failing_health(instance: dg.DagsterInstance) -> dict[int, tuple[str, str]]:
    """collection -> (status, evaluation time) for each partition whose latest
    `champion_health` materialization failed its check. The data version of a
    materialization is `<status>.<evaluation time>` (one query for every partition, as the
    retrain planner reads the classifier's)."""
    latest = instance.event_log_storage.get_latest_tags_by_partition(
        dg.AssetKey(HEALTH_ASSET), DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG]
    )
    versions = {k: t[DATA_VERSION_TAG].partition(".") for k, t in latest.items()
                if DATA_VERSION_TAG in t and k.isdigit()}  # fmt: skip
    return {
        int(key): (status, at)
        for key, (status, _, at) in versions.items()
        if status in {s.value for s in HealthStatus if s.failing}
    }
