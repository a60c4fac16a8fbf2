"""How `ml-platform run` executes one planned run: in-process, or through the instance.

With ``ML_PLATFORM_EXECUTOR`` unset or ``in_process`` a run executes in this process
(`execute_in_process`). Any other executor submits the run through the Dagster instance as a
reconstructable job of `ml_platform.defs.definitions` (the module the daemon and the workers
load), so steps run in subprocesses, on Celery workers, or in Kubernetes / Docker, and the run
is recorded in the instance's storage like a run the daemon launched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

from ml_platform.defs.executors import executor_kind, settings_config
from ml_platform.model_registry.tracking import owner_tags
from ml_platform.settings import ExecutorKind, Settings

DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE = "ml_platform.defs.definitions", "defs"
# executors whose steps run on other machines: each worker keeps its own home
REMOTE = frozenset({ExecutorKind.CELERY, ExecutorKind.K8S, ExecutorKind.DOCKER})


@dataclass(frozen=True)
class Submission:
    """The executor `run` uses, and the run config that carries this process's settings."""

    kind: ExecutorKind
    executor_config: Mapping[str, Any]

    @classmethod
    def for_settings(cls, settings: Settings) -> Submission:
        if settings.executor in (None, ExecutorKind.IN_PROCESS):
            return cls(ExecutorKind.IN_PROCESS, {})
        kind = executor_kind(settings)
        return cls(kind, settings_config(kind, settings))

    @property
    def in_process(self) -> bool:
        return self.kind is ExecutorKind.IN_PROCESS

    @classmethod
    def for_definitions(cls, defs: dg.Definitions) -> Submission:
        """From the settings the definitions' resources carry: the settings of this pass."""
        storage = (defs.resources or {}).get("storage")
        return cls.for_settings(storage.settings()) if storage else cls(ExecutorKind.IN_PROCESS, {})

    def run_config(self, resources: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
        """`base` plus the executor choice and the resources' fields as run config, so every
        step sees this process's settings; remote workers keep their own home."""
        config = {name: _fields(res, self.kind in REMOTE) for name, res in resources.items()}
        execution = {"kind": self.kind.value, "config": dict(self.executor_config)}
        return {**base, "resources": config, "execution": {"config": execution}}


def _fields(resource: Any, drop_home: bool) -> dict[str, Any]:
    values: dict[str, Any] = resource.model_dump(exclude_none=True)
    if drop_home:
        values.pop("home", None)
    return {"config": values}


def reconstructable_job(job_name: str) -> dg.ReconstructableJob:
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE)
    return repository.get_reconstructable_job(job_name)


def execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None,
    run_config: Mapping[str, Any],
    submission: Submission,
) -> dg.ExecutionResult:
    """Execute `job_name` for `partition_key`; failures are in the result, never raised."""
    if submission.in_process:
        job = defs.resolve_job_def(job_name)
        return job.execute_in_process(
            instance=instance, partition_key=partition_key, raise_on_error=False,
            run_config=dict(run_config), tags=owner_tags(),
        )  # fmt: skip
    tags = {"dagster/partition": partition_key} if partition_key else {}
    tags |= owner_tags()  # a run this process leaves behind is failed by the next tick
    config = submission.run_config(defs.resources or {}, run_config)
    return dg.execute_job(
        reconstructable_job(job_name), instance, run_config=config, tags=tags,
        raise_on_error=False,
    )  # fmt: skip
