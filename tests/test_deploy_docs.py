"""docs/deploy.md's files are valid, and its dagster.yaml makes a working PostgreSQL instance."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from ml_platform.settings import Settings
from tests.servers import PostgresServer

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def _compose() -> dict[str, Any]:
    return next(b for b in yaml_blocks() if isinstance(b, dict) and "services" in b)


def test_compose_has_every_service_the_deployment_needs() -> None:
    services = set(_compose()["services"])
    assert {"postgres", "redis", "minio", "mlflow", "webserver", "daemon", "celery-worker",
            "serve"} <= services  # fmt: skip


def test_compose_sets_only_settings_that_exist() -> None:
    env = _compose()["x-platform"]["environment"]
    names = {k.removeprefix("ML_PLATFORM_").lower() for k in env if k.startswith("ML_PLATFORM_")}
    assert names and names <= set(Settings.model_fields), names - set(Settings.model_fields)


def test_documented_dagster_yaml_runs_a_job_on_postgresql(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = next(b for b in yaml_blocks() if isinstance(b, dict) and "storage" in b)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    # a plain postgresql:// URL, as users write it (psycopg2 under SQLAlchemy < 2.1)
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_server.url(postgres_server.create_database()))

    @dg.op
    def one() -> int:
        return 1

    @dg.job
    def tiny() -> None:
        one()

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = tiny.execute_in_process(instance=instance)
        assert result.success
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_run_by_id(result.run_id) is not None
        assert len(instance.all_logs(result.run_id)) > 3
