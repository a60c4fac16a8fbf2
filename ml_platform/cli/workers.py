"""`ml-platform celery-worker`: a dagster-celery worker configured from the same settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ml_platform.settings import Settings


def worker_config(settings: Settings) -> dict[str, str]:
    """Celery settings of the worker: the broker and result backend the executor uses."""
    from ml_platform.defs.executors import celery_backend

    broker = settings.celery_broker_url
    if not broker:
        raise click.UsageError(
            "set ML_PLATFORM_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0): "
            "the broker `ml-platform run` and the daemon submit steps to"
        )
    return {"broker_url": broker, "result_backend": celery_backend(settings, broker)}


def write_config_module(directory: Path, config: dict[str, str]) -> Path:
    """`dagster_celery_config.py`, which `dagster_celery.app` imports when it is on the path."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {value!r}" for key, value in sorted(config.items())]
    (directory / "dagster_celery_config.py").write_text("\n".join(lines) + "\n")
    return directory


def worker_command(name: str | None, extra: tuple[str, ...]) -> list[str]:
    """`celery worker` on dagster-celery's app, as `dagster-celery worker start` runs it."""
    cmd = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker"]
    cmd += ["--prefetch-multiplier=1", "--loglevel", "INFO"]
    cmd += ["-n", f"{name}@%h"] if name else []
    return [*cmd, *extra]


@click.command("celery-worker", context_settings={"ignore_unknown_options": True})
@click.option("--home", type=click.Path(path_type=Path), default=None, help="This worker's home.")
@click.option("--name", default=None, help="Worker name (default: celery@host).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def celery_worker(home: Path | None, name: str | None, celery_args: tuple[str, ...]) -> None:
    """Execute steps of runs submitted with ML_PLATFORM_EXECUTOR=celery.

    CELERY_ARGS go to `celery worker` (e.g. --concurrency 1). The worker's home holds only
    caches; steps read and write through the shared store, metadata DB and MLflow, and record
    events in the instance the run names (its PostgreSQL storage).
    """
    settings = Settings(**({"home": home} if home else {}))  # type: ignore[arg-type]
    config_dir = write_config_module(settings.resolved_home / "celery", worker_config(settings))
    os.environ["ML_PLATFORM_HOME"] = str(settings.resolved_home)
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(config_dir), path) if p)
    cmd = worker_command(name, celery_args)
    os.execv(cmd[0], cmd)  # the worker is this process: stopping it stops the worker
