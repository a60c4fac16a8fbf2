"""A process killed (SIGKILL) inside a Dagster run, with an MLflow run open and a model logged
but never registered: the next tick marks both runs failed with the reason; `status` lists the
orphaned model directory and `models prune-orphans` removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.defs.leftovers import clear_leftovers
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import instance_for
from ml_platform.defs.sensors import leftovers_sensor
from ml_platform.services.leftovers import FAILURE_REASON, orphaned_models
from ml_platform.settings import Settings

KILLED_RUN = """
import os, signal, sys
import dagster as dg, mlflow
from mlflow.pyfunc import PythonModel
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import instance_for
from ml_platform.model_registry.artifacts import ensure_experiment
from ml_platform.model_registry.tracking import fluent_tracking_uri, owner_tags
from ml_platform.settings import Settings

class Echo(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input

settings = Settings(home=sys.argv[1])
resource = MlflowResource(home=sys.argv[1])

@dg.op
def train() -> None:
    client = resource.client()
    experiment = ensure_experiment(client, "crawlr-collection-classifiers",
                                   resource.artifact_location())
    with fluent_tracking_uri(client.tracking_uri):
        with mlflow.start_run(experiment_id=experiment, tags=owner_tags()):
            mlflow.pyfunc.log_model(name="model", python_model=Echo())
            os.kill(os.getpid(), signal.SIGKILL)  # dies before registering the version

@dg.job
def training():
    train()

training.execute_in_process(instance=instance_for(settings), tags=owner_tags())
"""


def test_a_killed_process_leaves_runs_the_next_tick_fails_and_orphans_a_command_removes(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "DAGSTER_HOME": str(home / "dagster")}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(home)], env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    settings = Settings(home=home)
    instance = instance_for(settings)
    client = MlflowResource(home=str(home)).client()
    (started,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    (running,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "attributes.status = 'RUNNING'"
    )

    # the daemon's tick (leftovers_sensor) and `run`'s (clear_leftovers) are one function
    context = dg.build_sensor_context(
        instance=instance, resources={"mlflow": MlflowResource(home=str(home))}
    )
    tick = leftovers_sensor(context)
    assert isinstance(tick, dg.SkipReason) and "2 runs of dead processes" in str(tick.skip_message)
    run = instance.get_run_by_id(started.run_id)
    assert run is not None and run.status is dg.DagsterRunStatus.FAILURE
    mlflow_run = client.get_run(running.info.run_id)
    assert mlflow_run.info.status == "FAILED" and "is gone" in mlflow_run.data.tags[FAILURE_REASON]
    assert clear_leftovers(instance, client) == []  # once

    (orphan,) = orphaned_models(client, settings.mlflow_artifact_root)
    (home / "data").mkdir(exist_ok=True)  # what `status` takes for a home
    status = CliRunner().invoke(main, ["status", "--home", str(home)])
    assert f"orphaned model: {orphan.path}" in status.output, status.output
    pruned = CliRunner().invoke(main, ["models", "prune-orphans", "--home", str(home)])
    assert pruned.exit_code == 0 and "1 removed" in pruned.output, pruned.output
    assert not orphan.path.exists()
    assert orphaned_models(client, settings.mlflow_artifact_root) == []


def test_a_registered_model_is_never_an_orphan(tmp_path: Path) -> None:
    """A version registered from `models:/<id>` (how training registers) uses its model
    directory: `status` must not list it and `prune-orphans` must not delete it."""
    import mlflow
    from mlflow.pyfunc.model import PythonModel

    from ml_platform.model_registry.artifacts import ensure_experiment, local_path
    from ml_platform.model_registry.tracking import fluent_tracking_uri

    class Echo(PythonModel):
        def predict(self, context: object, model_input: object, params: object = None) -> object:
            return model_input

    home = tmp_path / "home"
    resource = MlflowResource(home=str(home))
    client = resource.client()
    experiment = ensure_experiment(client, "crawlr-collection-classifiers",
                                   resource.artifact_location())  # fmt: skip
    with fluent_tracking_uri(client.tracking_uri):  # as training registers
        with mlflow.start_run(experiment_id=experiment):
            logged = mlflow.pyfunc.log_model(name="model", python_model=Echo())
        client.create_registered_model("crawlr-collection-1")
        version = client.create_model_version(
            "crawlr-collection-1", logged.model_uri, model_id=logged.model_id
        )
    source = client.get_model_version("crawlr-collection-1", version.version).source
    assert str(source).startswith("models:/")

    root = Settings(home=home).mlflow_artifact_root
    directory = local_path(root)
    assert directory is not None and (directory / "models" / logged.model_id).is_dir()
    assert orphaned_models(client, root) == []
