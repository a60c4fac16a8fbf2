"""Dagster runs left STARTED by a process that died: marked failed with the reason.

`run` and `finetune` tag each run with its owner (`model_registry.tracking.owner_tags`); the
next tick (`clear_leftovers`, called by `run_once`) reports a run whose owner process is gone
as failed, so the UI stops showing it as running and its partition can be planned again.
"""

from __future__ import annotations

import logging

import dagster as dg
from mlflow import MlflowClient

from ml_platform.model_registry.tracking import owner_gone
from ml_platform.services.leftovers import fail_dead_mlflow_runs

log = logging.getLogger(__name__)
UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]


def fail_dead_dagster_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report every started run whose owner process is gone as failed, with the reason."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        reason = owner_gone(run.tags)
        if reason is None:
            continue
        instance.report_run_failed(run, message=f"marked failed by the next tick: {reason}")
        failed.append(f"Dagster run {run.run_id} ({run.job_name}): {reason}")
        log.warning("marked failed: Dagster run %s: %s", run.run_id, reason)
    return failed


def clear_leftovers(instance: dg.DagsterInstance, client: MlflowClient) -> list[str]:
    """Both kinds of runs a dead process left, marked failed; what was marked."""
    return [*fail_dead_dagster_runs(instance), *fail_dead_mlflow_runs(client)]
