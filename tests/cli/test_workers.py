"""`ml-platform celery-worker` builds the dagster-celery worker from the platform settings."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ml_platform.cli.workers import worker_command, worker_config
from ml_platform.settings import Settings


def test_worker_config_uses_the_broker_and_a_redis_result_backend() -> None:
    config = worker_config(Settings(celery_broker_url="redis://h:6379/2"))
    assert config == {"broker": "redis://h:6379/2", "backend": "redis://h:6379/2"}


def test_worker_config_keeps_an_explicit_backend() -> None:
    settings = Settings(celery_broker_url="amqp://h//", celery_backend_url="rpc://")
    assert worker_config(settings)["backend"] == "rpc://"


def test_worker_without_broker_says_which_setting_to_set() -> None:
    with pytest.raises(click.UsageError, match="ML_PLATFORM_CELERY_BROKER_URL"):
        worker_config(Settings())


def test_worker_command_starts_dagster_celery_with_the_config_and_celery_args() -> None:
    cmd = worker_command(Path("/w/c.yaml"), "w1", ("--concurrency", "1"))
    assert cmd[1:] == ["-m", "dagster_celery.cli", "worker", "start", "-A", "dagster_celery.app",
                       "-y", "/w/c.yaml", "-n", "w1", "--", "--concurrency", "1"]  # fmt: skip
