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


# Option fields that mirror a setting: (option class, its field) -> the Settings field.
MIRRORED = {
    ("EmbedderOptions", "clip_model"): "clip_model",
    ("EmbedderOptions", "dino_model"): "dino_model",
    ("EmbedderOptions", "allow_random_weights"): "allow_random_weights",
    ("EmbedderOptions", "device"): "device",
    ("EmbedderOptions", "batch_size"): "embed_batch_size",
    ("EmbedderOptions", "int8_mode"): "embed_int8_mode",
    ("ServeOptions", "refresh_interval_s"): "serve_refresh_interval_s",
    ("ServeOptions", "siglip_model"): "siglip_model",
    ("ServeOptions", "model_memory_mb"): "serve_model_memory_mb",
    ("ServeOptions", "model_ttl_s"): "serve_model_ttl_s",
}
# Deliberate, documented differences (EmbedderOptions.backend: an embedder built without
# settings runs its native checkpoint; embedder_options(settings) applies `embed_backend`).
NOT_MIRRORED = {("EmbedderOptions", "backend")}


def test_every_option_that_mirrors_a_setting_has_the_settings_default() -> None:
    import dataclasses

    from ml_platform.serving.options import ServeOptions
    from ml_platform.vision.embedders.base import EmbedderOptions

    classes = {"EmbedderOptions": EmbedderOptions, "ServeOptions": ServeOptions}
    for (owner, name), setting in MIRRORED.items():
        (option,) = [f for f in dataclasses.fields(classes[owner]) if f.name == name]
        assert option.default == Settings.model_fields[setting].default, (owner, name)
    # a field named like a setting but neither mirrored nor excused is a second default
    settings = set(Settings.model_fields)
    for owner, cls in classes.items():
        for field in dataclasses.fields(cls):
            if field.name in settings and (owner, field.name) not in NOT_MIRRORED:
                assert (owner, field.name) in MIRRORED, f"{owner}.{field.name}"


def test_an_app_built_from_settings_uses_the_serve_settings(tmp_path: Path) -> None:
    from ml_platform.serving import create_app

    settings = Settings(home=tmp_path, serve_refresh_interval_s=5, serve_allowed_image_hosts="a,b")
    options = create_app(settings).state.serving.options
    assert options.refresh_interval_s == 5 and options.allowed_image_hosts == ("a", "b")
