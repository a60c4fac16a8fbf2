"""`run` with an out-of-process executor submits through the instance: a real multiprocess run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ml_platform.defs.runner import QUIET, Platform, instance_for
from ml_platform.defs.submission import Submission, execute
from ml_platform.demo.sample import build_sample_snapshot
from ml_platform.settings import ExecutorKind, Settings


def test_a_multiprocess_run_executes_steps_in_subprocesses_with_this_processes_settings(
    tmp_path: Path,
) -> None:
    snapshot = tmp_path / "snapshot"
    build_sample_snapshot(snapshot)
    settings = Settings(home=tmp_path / "home", crawlr=str(snapshot),
                        executor=ExecutorKind.MULTIPROCESS)  # fmt: skip
    platform, instance = Platform.for_settings(settings, None), instance_for(settings)
    submission = Submission.for_settings(settings)
    result = execute(platform.definitions(), instance, "collections_job", None, QUIET, submission)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status is dg.DagsterRunStatus.SUCCESS
    assert run.run_config["execution"]["config"]["kind"] == "multiprocess"
    types = {e.dagster_event_type for e in instance.all_logs(result.run_id) if e.is_dagster_event}
    assert dg.DagsterEventType.STEP_WORKER_STARTED in types  # the step ran in a subprocess
    # the subprocess got this process's home and crawlr through run config, not the environment
    assert (settings.data_dir / "collections.json").is_file()
    keys = [e.asset_key for e in result.get_asset_materialization_events()]
    assert keys == [dg.AssetKey("crawlr_collections")]
