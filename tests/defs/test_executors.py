"""ML_PLATFORM_EXECUTOR chooses the executor when a run starts; one Definitions serves all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor
from dagster._core.executor.step_delegating import StepDelegatingExecutor
from dagster_celery.executor import CeleryExecutor

from ml_platform.defs.definitions import defs
from ml_platform.defs.executors import create_executor, platform_executor
from ml_platform.defs.submission import Submission, reconstructable_job
from ml_platform.settings import ExecutorKind, Settings

BROKER = "redis://127.0.0.1:6390/0"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: ml}}]
current-context: x
"""


def _executor(settings: Settings, config: dict[str, Any] | None = None) -> dg.Executor:
    context = dg.InitExecutorContext(
        job=reconstructable_job("ingest_job"), executor_def=platform_executor,
        executor_config=config or {"config": {}}, instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    return create_executor(context, settings)


def test_every_job_uses_the_platform_executor() -> None:
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__"):
            assert job.executor_def.name == "ml_platform", job.name


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(None, MultiprocessExecutor), ("multiprocess", MultiprocessExecutor),
     ("in_process", InProcessExecutor), ("celery", CeleryExecutor)],
)  # fmt: skip
def test_the_setting_picks_the_executor_and_unset_means_multiprocess(
    kind: str | None, expected: type
) -> None:
    settings = Settings(executor=kind, celery_broker_url=BROKER)  # type: ignore[arg-type]
    assert type(_executor(settings)) is expected


def test_celery_takes_broker_and_a_redis_backend_from_the_settings() -> None:
    executor = _executor(Settings(executor=ExecutorKind.CELERY, celery_broker_url=BROKER))
    assert isinstance(executor, CeleryExecutor)
    assert (executor.broker, executor.backend) == (BROKER, BROKER)


def test_celery_without_a_broker_names_the_setting() -> None:
    with pytest.raises(ValueError, match="ML_PLATFORM_CELERY_BROKER_URL"):
        _executor(Settings(executor=ExecutorKind.CELERY))


def test_run_config_kind_wins_over_the_setting() -> None:
    config = {"kind": "celery", "config": {"broker": BROKER}}
    executor = _executor(Settings(executor=ExecutorKind.IN_PROCESS), config)
    assert isinstance(executor, CeleryExecutor) and executor.broker == BROKER


def test_run_config_merges_into_the_chosen_executor() -> None:
    executor = _executor(Settings(), {"config": {"max_concurrent": 3}})
    assert isinstance(executor, MultiprocessExecutor)
    assert executor._max_concurrent == 3


def test_an_unknown_kind_in_run_config_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="in_process, multiprocess, celery, k8s, docker"):
        _executor(Settings(), {"kind": "spark", "config": {}})


def test_kubernetes_and_docker_executors_build_from_the_same_definitions(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    k8s_config = {"load_incluster_config": False, "kubeconfig_file": str(kubeconfig),
                  "job_namespace": "ml"}  # fmt: skip
    k8s = _executor(Settings(executor=ExecutorKind.K8S), {"config": k8s_config})
    docker = _executor(Settings(executor=ExecutorKind.DOCKER), {"config": {"image": "ml:1"}})
    assert isinstance(k8s, StepDelegatingExecutor) and isinstance(docker, StepDelegatingExecutor)
    assert type(k8s._step_handler).__name__ == "K8sStepHandler"
    assert type(docker._step_handler).__name__ == "DockerStepHandler"


def test_run_submits_through_the_instance_unless_in_process() -> None:
    assert Submission.for_settings(Settings()).in_process
    assert Submission.for_settings(Settings(executor=ExecutorKind.IN_PROCESS)).in_process
    celery = Submission.for_settings(
        Settings(executor=ExecutorKind.CELERY, celery_broker_url=BROKER)
    )
    assert not celery.in_process
    assert celery.executor_config == {"broker": BROKER, "backend": BROKER}
