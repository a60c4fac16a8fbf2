"""`ml-platform celery-worker`: a dagster-celery worker configured from the same settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import yaml

from ml_platform.settings import Settings


def worker_config(settings: Settings) -> dict[str, str]:
    """The broker/backend block `dagster-celery worker start -y` reads (the executor's config)."""
    from ml_platform.defs.executors import celery_backend

    broker = settings.celery_broker_url
    if not broker:
        raise click.UsageError(
            "set ML_PLATFORM_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0): "
            "the broker `ml-platform run` and the daemon submit steps to"
        )
    return {"broker": broker, "backend": celery_backend(settings, broker)}


def worker_command(config_file: Path, name: str | None, extra: tuple[str, ...]) -> list[str]:
    cmd = [sys.executable, "-m", "dagster_celery.cli", "worker", "start"]
    cmd += ["-A", "dagster_celery.app", "-y", str(config_file)]
    cmd += ["-n", name] if name else []
    return [*cmd, *(["--", *extra] if extra else [])]


@click.command("celery-worker", context_settings={"ignore_unknown_options": True})
@click.option("--home", type=click.Path(path_type=Path), default=None, help="This worker's home.")
@click.option("--name", default=None, help="Worker name (default: dagster-<uuid>@host).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def celery_worker(home: Path | None, name: str | None, celery_args: tuple[str, ...]) -> None:
    """Execute steps of runs submitted with ML_PLATFORM_EXECUTOR=celery.

    CELERY_ARGS go to `celery worker` (e.g. --concurrency 1). The worker's home holds only
    caches; steps read and write through the shared store, metadata DB and MLflow.
    """
    settings = Settings(**({"home": home} if home else {}))  # type: ignore[arg-type]
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").touch()
    config_file = settings.resolved_home / "celery_worker.yaml"
    config_file.write_text(yaml.safe_dump(worker_config(settings)))
    os.environ["ML_PLATFORM_HOME"] = str(settings.resolved_home)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)  # dagster-celery writes config there
    # dagster-celery starts `celery` from PATH: this interpreter's
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    cmd = worker_command(config_file, name, celery_args)
    os.execv(cmd[0], cmd)
