"""`ml-platform celery-worker` builds the dagster-celery worker from the platform settings."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ml_platform.cli.workers import worker_command, worker_config, write_config_module
from ml_platform.settings import Settings


def test_worker_config_uses_the_broker_and_a_redis_result_backend() -> None:
    config = worker_config(Settings(celery_broker_url="redis://h:6379/2"))
    assert config == {"broker_url": "redis://h:6379/2", "result_backend": "redis://h:6379/2"}


def test_worker_config_keeps_an_explicit_backend() -> None:
    settings = Settings(celery_broker_url="amqp://h//", celery_backend_url="rpc://")
    assert worker_config(settings)["result_backend"] == "rpc://"


def test_worker_without_broker_says_which_setting_to_set() -> None:
    with pytest.raises(click.UsageError, match="ML_PLATFORM_CELERY_BROKER_URL"):
        worker_config(Settings())


def test_worker_command_runs_celery_on_dagster_celerys_app_with_the_celery_args() -> None:
    cmd = worker_command("w1", ("--concurrency", "1"))
    assert cmd[1:] == ["-m", "celery", "-A", "dagster_celery.app", "worker",
                       "--prefetch-multiplier=1", "--loglevel", "INFO", "-n", "w1@%h",
                       "--concurrency", "1"]  # fmt: skip


def test_the_config_module_is_what_dagster_celery_app_reads(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = {"broker_url": "redis://h:1/0", "result_backend": "redis://h:1/0"}
    directory = write_config_module(tmp_path / "celery", config)
    code = "from dagster_celery.app import app; print(app.conf.broker_url)"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(directory)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "redis://h:1/0"
