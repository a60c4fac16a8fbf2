"""Settings that deployments set from outside: DAGSTER_HOME, the executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.settings import ExecutorKind, Settings


def test_dagster_home_is_respected_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "shared_instance"))
    assert Settings(home=tmp_path / "home").dagster_home == tmp_path / "shared_instance"


def test_dagster_home_defaults_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert Settings(home=tmp_path).dagster_home == tmp_path.resolve() / "dagster"


def test_executor_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_PLATFORM_EXECUTOR", "celery")
    monkeypatch.setenv("ML_PLATFORM_CELERY_BROKER_URL", "redis://h:6379/0")
    settings = Settings()
    assert settings.executor is ExecutorKind.CELERY
    assert settings.celery_broker_url == "redis://h:6379/0"
