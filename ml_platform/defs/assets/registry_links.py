"""What the model-training assets share in their results: the registered version, MLflow
links and the promotion gate's check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from ml_platform.model_registry.aliases import PromotionDecision
from ml_platform.model_registry.versions import RegisteredVersion


def registration(
    registered: RegisteredVersion, decision: PromotionDecision, champion_before: str | None
) -> dict[str, str | bool]:
    """The registered version and what the promotion gate decided about it."""
    return {
        "model": registered.name,
        "model_version": registered.version,
        "promoted": decision.promote,
        "decision": decision.reason,
        "champion_before": champion_before or "none",
    }


def mlflow_links(
    registered: RegisteredVersion, ui_url: str, tracking_uri: str
) -> dict[str, dg.MetadataValue | str]:  # type: ignore[type-arg]
    """Links to the training run and the registered version in the MLflow UI."""
    ui = ui_url.rstrip("/")
    return {
        "mlflow_run": dg.MetadataValue.url(f"{ui}/{registered.run_ui_path}"),
        "mlflow_model_version": dg.MetadataValue.url(
            f"{ui}/#/models/{registered.name}/versions/{registered.version}"
        ),
        "tracking_uri": tracking_uri,
    }


def gate_check(
    check: str, passed: bool, reason: str, metadata: Mapping[str, Any]
) -> dg.AssetCheckResult:
    """The promotion gate's result: a failed sanity check is an error, a kept champion a
    warning."""
    sane = "sanity" not in reason
    return dg.AssetCheckResult(
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN if sane else dg.AssetCheckSeverity.ERROR,
        description=reason,
        metadata=metadata,
    )
