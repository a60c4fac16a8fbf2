"""`batch_drift`: each new batch against what the champions of its foci trained on.

The work is `services.batch_drift.evaluate_batch_drift`; this asset writes the batch's rows
(`data/drift/<batch>.parquet`), plots every test's p-value over the batches so far and runs
the `batch_not_drifted` check (WARN, never blocking). A drifted batch alerts
(`ml_platform/alerts.py`), and `health_retrain_sensor` reads the drifted collections back from
this asset's data versions (`drifted_batches`) and asks the retrain planner for them.
"""

import math
import warnings

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.events import DagsterEventType

from ml_platform.alerts import AlertConfig
from ml_platform.defs.assets.cluster_pictures import inline_png
from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.learning.drift_plot import drift_png
from ml_platform.services.batch_drift import (
    DRIFT_ASSET,
    BatchDriftReport,
    DriftConfig,
    DriftStatus,
    alert_drift,
    drift_history,
    evaluate_batch_drift,
    series_name,
)
from ml_platform.store.alert_log import AlertLog
from ml_platform.store.collections_file import has_collections, read_collections
from ml_platform.store.drift_table import DriftRow, write_drift

CHECK = "batch_not_drifted"
CLASSIFIER_ASSET = "collection_classifier"
MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION
CHECK_DESCRIPTION = (
    "The batch's embeddings of each focus against its champions' training embeddings (MMD, "
    "permutation p-value) and each collection's predicted-positive share against the "
    "champion's share on those images (Fisher's exact test). WARN when a test rejects 'no "
    "drift' at the family-wise level ML_PLATFORM_DRIFT_ALPHA (the false-alarm rate per clean "
    "batch). A drifted batch alerts and asks the retrain planner for its collections."
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks, as the gate's
    CHECK_SPEC = dg.AssetCheckSpec(
        CHECK, asset=DRIFT_ASSET, description=CHECK_DESCRIPTION, partitions_def=ingestion_batches
    )


@dg.asset(
    group_name="classifiers",
    partitions_def=ingestion_batches,
    deps=["embeddings", "crawlr_collections"],
    check_specs=[CHECK_SPEC],
    kinds={"mlflow", "parquet"},
)
def batch_drift(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """How far the batch is from what the champions trained on, per focus and collection."""
    key, layout, settings = context.partition_key, storage.layout(), storage.settings()
    collections = read_collections(layout) if has_collections(layout) else []
    report = evaluate_batch_drift(
        mlflow.client(), layout, collections, key, DriftConfig.from_settings(settings),
        artifact_root=mlflow.artifact_root(),
    )  # fmt: skip
    write_drift(layout, key, report.rows)
    context.log.info("batch %s: %s: %s", key, report.status.value, report.reason)
    said = alert_drift(AlertLog(layout.metadata()), AlertConfig.from_settings(settings), report,
                       context.run_id)  # fmt: skip
    context.log.info("batch %s: alert: %s", key, said)
    cids = "-".join(str(c) for c in report.drifted_collections)
    return dg.MaterializeResult(
        metadata=drift_metadata(report, drift_history(layout, key)),
        check_results=[check_result(report, said)],
        data_version=dg.DataVersion(f"{report.status.value}:{cids}"),
    )


def check_result(report: BatchDriftReport, alert: str = "none") -> dg.AssetCheckResult:
    """Failing (WARN) on a drifted batch; a batch without a champion to judge it passes.
    `alert` says what the alert did (`alert_check`)."""
    return dg.AssetCheckResult(
        check_name=CHECK,
        passed=report.status is not DriftStatus.DRIFTED,
        severity=dg.AssetCheckSeverity.WARN,
        description=report.reason[:2000],
        metadata={
            "status": report.status.value,
            "alert": alert,
            "drifted_collections": dg.MetadataValue.json(list(report.drifted_collections)),
            **{f"{series_name(r)} p_value": r.p_value for r in report.rows
               if math.isfinite(r.p_value)},
        },
    )  # fmt: skip


def drift_metadata(
    report: BatchDriftReport, history: list[tuple[str, list[DriftRow]]]
) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    rows = [{"test": series_name(r), "statistic": r.statistic, "p_value": r.p_value,
             "level": r.level, "n_batch": r.n_batch, "n_reference": r.n_reference,
             "drifted": r.drifted, "reason": r.reason} for r in report.rows]  # fmt: skip
    out: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "status": dg.MetadataValue.text(report.status.value),
        "reason": dg.MetadataValue.text(report.reason[:2000]),
        "tests": dg.MetadataValue.json(rows),
        "drifted_collections": dg.MetadataValue.json(list(report.drifted_collections)),
    }
    series: dict[str, list[float]] = {}
    for i, (_, batch_rows) in enumerate(history):
        for r in batch_rows:
            series.setdefault(series_name(r), [math.nan] * len(history))[i] = r.p_value
    if series:
        levels = [min((r.level for r in rows_), default=math.nan) for _, rows_ in history]
        png = drift_png([b for b, _ in history], series, levels,
                        title=f"drift over {len(history)} batches")  # fmt: skip
        out["trend"] = inline_png(png, f"p-values over {len(history)} batches")
    return out


def drifted_batches(instance: dg.DagsterInstance) -> dict[str, tuple[int, ...]]:
    """batch -> the collections its latest `batch_drift` materialization found drifted (the
    data version is `<status>:<collection ids joined by ->`)."""
    latest = instance.event_log_storage.get_latest_tags_by_partition(
        dg.AssetKey(DRIFT_ASSET), MATERIALIZATION, [DATA_VERSION_TAG]
    )
    out: dict[str, tuple[int, ...]] = {}
    for batch, tags in latest.items():
        status, _, cids = tags.get(DATA_VERSION_TAG, "").partition(":")
        if status == DriftStatus.DRIFTED.value and cids:
            out[batch] = tuple(int(c) for c in cids.split("-") if c.isdigit())
    return out


def drifted_since_training(instance: dg.DagsterInstance) -> dict[int, str]:
    """collection -> the newest drifted batch recorded after its last `collection_classifier`
    materialization (event-log order): the drifts its last training did not see."""
    storage = instance.event_log_storage
    drifted = drifted_batches(instance)
    drift_at = storage.get_latest_storage_id_by_partition(
        dg.AssetKey(DRIFT_ASSET), MATERIALIZATION, set(drifted)
    )
    trained_at = storage.get_latest_storage_id_by_partition(
        dg.AssetKey(CLASSIFIER_ASSET), MATERIALIZATION
    )
    out: dict[int, tuple[int, str]] = {}
    for batch, cids in drifted.items():
        at = drift_at.get(batch, 0)
        for cid in cids:
            if at > trained_at.get(str(cid), -1) and at > out.get(cid, (-1, ""))[0]:
                out[cid] = (at, batch)
    return {cid: batch for cid, (_, batch) in sorted(out.items())}
