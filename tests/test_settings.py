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


# Deliberate, documented differences from the setting's default (EmbedderOptions.backend: an
# embedder built without settings runs its native checkpoint; DecodeOptions.reduce_to: images
# decoded without settings are analysed at full size).
NOT_MIRRORED = {("EmbedderOptions", "backend"), ("DecodeOptions", "reduce_to")}


def test_every_option_a_setting_feeds_has_the_settings_default() -> None:
    import dataclasses

    from ml_platform.serving.images import DecodeOptions
    from ml_platform.serving.options import ServeOptions
    from ml_platform.settings import SETTING
    from ml_platform.vision.embedders.base import EmbedderOptions

    fed = 0
    for cls in (EmbedderOptions, ServeOptions, DecodeOptions):
        for field in dataclasses.fields(cls):
            where, setting = (cls.__name__, field.name), field.metadata.get(SETTING)
            if setting is None:  # a field named like a setting but not fed by it: a 2nd default
                assert field.name not in Settings.model_fields, where
                continue
            fed += 1
            assert hasattr(Settings(), setting), where
            if setting in Settings.model_fields and where not in NOT_MIRRORED:
                assert field.default == Settings.model_fields[setting].default, where
    assert fed == 21  # 11 embedder options, 5 serve options, 5 decode limits


def test_an_app_built_from_settings_uses_the_serve_settings(tmp_path: Path) -> None:
    from ml_platform.serving import create_app

    settings = Settings(home=tmp_path, serve_refresh_interval_s=5, serve_allowed_image_hosts="a,b")
    options = create_app(settings).state.serving.options
    assert options.refresh_interval_s == 5 and options.allowed_image_hosts == ("a", "b")
