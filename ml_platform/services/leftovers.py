"""What a killed process leaves behind, found and cleared by the next tick or a command.

A process that starts an MLflow run or a Dagster run tags it with its owner (`owner_tags`:
host and pid). When that process is gone, the run can never finish: the next tick marks it
failed with the reason (`fail_dead_mlflow_runs` here; Dagster runs in `defs.leftovers`).
A model logged by a run that died before its version was created is an orphaned model
directory: nothing registered points at it; `orphaned_models` lists them, `remove_orphans`
deletes them.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import RunStatus, ViewType
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml_platform.model_registry.artifacts import local_path
from ml_platform.model_registry.tracking import owner_gone

log = logging.getLogger(__name__)
FAILURE_REASON = "ml_platform.failure_reason"
PAGE = 500
MODELS_URI = "models:/"


def fail_dead_mlflow_runs(client: MlflowClient) -> list[str]:
    """Mark RUNNING MLflow runs whose owner process is gone FAILED, with the reason as a tag."""
    experiments = [e.experiment_id for e in client.search_experiments(ViewType.ACTIVE_ONLY)]
    failed: list[str] = []
    token: str | None = None
    while experiments:
        page = client.search_runs(
            experiments, "attributes.status = 'RUNNING'", max_results=PAGE, page_token=token
        )
        for run in page:
            reason = owner_gone(run.data.tags)
            if reason is not None:
                client.set_tag(run.info.run_id, FAILURE_REASON, reason)
                client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
                failed.append(f"MLflow run {run.info.run_id} ({run.info.run_name}): {reason}")
        token = page.token
        if not token:
            break
    for line in failed:
        log.warning("marked failed: %s", line)
    return failed


@dataclass(frozen=True)
class OrphanedModel:
    path: Path
    model_id: str
    reason: str


def orphaned_models(client: MlflowClient, artifact_root: str) -> list[OrphanedModel]:
    """Logged-model directories under `artifact_root/models` that no model version uses and
    no live run is still writing (a run killed between logging and registering)."""
    root = local_path(artifact_root)
    directory = None if root is None else root / "models"
    if directory is None or not directory.is_dir():
        return []
    used = {_model_id(v) for v in _all_versions(client)}
    found = []
    for path in sorted(p for p in directory.iterdir() if p.is_dir()):
        if path.name in used:
            continue
        reason = _orphan_reason(client, path.name)
        if reason is not None:
            found.append(OrphanedModel(path, path.name, reason))
    return found


def remove_orphans(orphans: list[OrphanedModel]) -> int:
    """Delete the listed directories; the number removed."""
    for orphan in orphans:
        shutil.rmtree(orphan.path)
        log.info("removed orphaned model %s (%s)", orphan.path, orphan.reason)
    return len(orphans)


def _orphan_reason(client: MlflowClient, model_id: str) -> str | None:
    try:
        model = client.get_logged_model(model_id)
    except MlflowException:
        return "not in the tracking store"
    run_id = model.source_run_id
    if run_id is None:
        return "no model version uses it"
    run = client.get_run(run_id)
    if run.info.status == "RUNNING" and owner_gone(run.data.tags) is None:
        return None  # its run may still register it
    return f"no model version uses it; its run {run_id} is {run.info.status}"


def _model_id(version: ModelVersion) -> str | None:
    """The logged model a version uses: its `model_id`, else the id in its `models:/<id>`
    source (the SQL store leaves `model_id` empty on versions registered that way)."""
    if getattr(version, "model_id", None):
        return str(version.model_id)
    source = str(version.source or "")
    return source.removeprefix(MODELS_URI).split("/")[0] if source.startswith(MODELS_URI) else None


def _all_versions(client: MlflowClient) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(max_results=PAGE, page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            return versions
