"""The executor `ML_PLATFORM_EXECUTOR` names, chosen when a run starts (never at import time).

One Definitions serves every deployment: the jobs carry `platform_executor`, which reads the
settings in the process that launches the run (daemon, webserver, `ml-platform run`) and hands
the run to Dagster's in-process, multiprocess, Celery, Kubernetes or Docker executor. Run config
`execution: config: {kind: celery, config: {...}}` chooses per run (what `ml-platform run`
submits with); `config` alone is merged into the chosen executor's (e.g. `max_concurrent`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._config import process_config

from ml_platform.settings import ExecutorKind, Settings

# executor kind -> (module, executor definition, the pip extra that installs the module)
INTEGRATIONS: dict[ExecutorKind, tuple[str, str, str]] = {
    ExecutorKind.CELERY: ("dagster_celery", "celery_executor", "celery"),
    ExecutorKind.K8S: ("dagster_k8s", "k8s_job_executor", "k8s"),
    ExecutorKind.DOCKER: ("dagster_docker", "docker_executor", "docker"),
}
DAEMON_DEFAULT = ExecutorKind.MULTIPROCESS
KINDS = ", ".join(k.value for k in ExecutorKind)


def executor_kind(settings: Settings) -> ExecutorKind:
    """The configured executor; unset means Dagster's default for launched runs."""
    return settings.executor or DAEMON_DEFAULT


def parse_kind(value: str) -> ExecutorKind:
    try:
        return ExecutorKind(value)
    except ValueError:
        raise ValueError(f"executor kind {value!r} is not one of: {KINDS}") from None


def executor_definition(kind: ExecutorKind) -> dg.ExecutorDefinition:
    """Dagster's executor for `kind`; a missing integration says which extra installs it."""
    if kind is ExecutorKind.IN_PROCESS:
        return dg.in_process_executor
    if kind is ExecutorKind.MULTIPROCESS:
        return dg.multiprocess_executor
    module_name, attribute, extra = INTEGRATIONS[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeError(
            f"ML_PLATFORM_EXECUTOR={kind.value} needs {module_name}, which is not installed: "
            f"pip install 'ml_platform[{extra}]'"
        ) from exc
    definition = getattr(module, attribute)
    assert isinstance(definition, dg.ExecutorDefinition)
    return definition


def celery_backend(settings: Settings, broker: str) -> str:
    if settings.celery_backend_url:
        return settings.celery_backend_url
    return broker if broker.startswith(("redis://", "rediss://")) else "rpc://"


def settings_config(kind: ExecutorKind, settings: Settings) -> dict[str, Any]:
    """Executor config the settings imply (the Celery broker and backend)."""
    if kind is not ExecutorKind.CELERY:
        return {}
    broker = settings.celery_broker_url
    if not broker:
        raise ValueError(
            "ML_PLATFORM_EXECUTOR=celery needs ML_PLATFORM_CELERY_BROKER_URL "
            "(e.g. redis://127.0.0.1:6379/0), the broker the workers listen on"
        )
    return {"broker": broker, "backend": celery_backend(settings, broker)}


def resolved_config(
    definition: dg.ExecutorDefinition, config: Mapping[str, Any]
) -> Mapping[str, Any]:
    """`config` checked against the executor's schema, with its defaults filled in."""
    assert definition.config_schema is not None
    result = process_config(definition.config_schema.config_type, config)
    if not result.success:
        errors = "; ".join(e.message for e in result.errors or [])
        raise ValueError(f"executor {definition.name!r}: invalid config {dict(config)}: {errors}")
    value = result.value
    assert isinstance(value, Mapping)
    return value


def create_executor(
    init_context: dg.InitExecutorContext, settings: Settings | None = None
) -> dg.Executor:
    """The chosen executor: run config's `kind` and `config` (what `ml-platform run` submits
    with), else the settings of the process that starts the run."""
    settings = settings or Settings()
    chosen = init_context.executor_config.get("kind")
    kind = parse_kind(str(chosen)) if chosen else executor_kind(settings)
    definition = executor_definition(kind)
    given: dict[str, Any] = dict(init_context.executor_config.get("config") or {})  # type: ignore[call-overload]
    implied = {} if chosen else settings_config(kind, settings)
    config = resolved_config(definition, {**implied, **given})
    delegate = dg.InitExecutorContext(
        job=init_context.job, executor_def=definition, executor_config=config,
        instance=init_context.instance,
    )  # fmt: skip
    executor = definition.executor_creation_fn(delegate)  # type: ignore[misc]
    assert isinstance(executor, dg.Executor)
    return executor


@dg.executor(
    name="ml_platform",
    config_schema={
        "kind": dg.Field(
            str,
            is_required=False,
            description=f"Overrides ML_PLATFORM_EXECUTOR for this run: one of {KINDS}.",
        ),
        "config": dg.Field(
            dg.Permissive(),  # type: ignore[no-untyped-call]
            is_required=False,
            default_value={},
            description="Config of the chosen executor (with `kind`: all of it, else merged "
            "over what the settings imply, e.g. the Celery broker).",
        ),
    },
    requirements=dg.multiple_process_executor_requirements(),
)
def platform_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """ML_PLATFORM_EXECUTOR's executor (default multiprocess), read when the run starts."""
    return create_executor(init_context)
