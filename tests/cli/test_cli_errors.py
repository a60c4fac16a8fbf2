"""CLI failures as a new user meets them: one sentence, one exit code per kind of failure
(README's table: 1 run failed, 2 setting, 3 no home, 4 input file, 5 crawlr unreachable), no
stray homes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from ml_platform.cli import main
from ml_platform.home import secure_home

HOME_VARS = ("ML_PLATFORM_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in HOME_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "default-home"))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ML_PLATFORM_EMBED_BATCH_SIZE", "-5", "must be a positive integer, got -5"),
        ("ML_PLATFORM_EMBED_BATCH_SIZE", "many", "valid integer"),
        ("ML_PLATFORM_CRAWLR_TIMEOUT_S", "0", "positive number of seconds"),
        ("ML_PLATFORM_MLFLOW_UI_URL", "localhost:5000", "http:// or https:// URL"),
        ("ML_PLATFORM_YUNET_MODEL", "/nonexistent/yunet.onnx", "does not exist"),
        ("ML_PLATFORM_SERVE_TOKEN", "", "set but empty"),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable_exit_2(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, output = invoke("models", "list")

    assert code == 2, output
    assert variable in output and expected in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) <= 2


def test_missing_crawlr_directory_is_a_short_error_naming_option_and_variable(
    tmp_path: Path,
) -> None:
    code, output = invoke("run", "--home", str(tmp_path / "h"), "--crawlr", "/nonexistent")

    assert code == 2, output
    assert "ML_PLATFORM_CRAWLR (or --crawlr)" in output
    assert "'/nonexistent' is neither an http(s) URL nor an existing snapshot directory" in output
    assert len(output.strip().splitlines()) <= 2
    assert not (tmp_path / "h").exists()


def test_crawlr_password_in_a_bad_setting_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_PLATFORM_CRAWLR", "http://ingest:hunter2@[::1/api")
    code, output = invoke("models", "list")

    assert code == 2
    assert "ML_PLATFORM_CRAWLR" in output and "hunter2" not in output


@pytest.mark.parametrize(
    "command",
    [("models", "list"), ("models", "show", "1"), ("models", "rollback", "1"), ("serve",),
     ("status",)],
)  # fmt: skip
def test_commands_that_read_a_home_never_create_one(tmp_path: Path, command: tuple[str]) -> None:
    typo = tmp_path / "typo"
    code, output = invoke(*command, "--home", str(typo))

    assert code == 3, output
    assert f"no platform home at {typo}" in output or f"{typo} is not an ml_platform home" in output
    assert not typo.exists()


def test_verbose_flag_adds_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_PLATFORM_EMBED_BATCH_SIZE", "-5")
    quiet_code, quiet = invoke("models", "list")
    loud_code, loud = invoke("-v", "models", "list")

    assert quiet_code == loud_code == 2
    assert "Traceback" not in quiet and "Traceback" in loud


def test_secure_home_makes_home_private_and_new_files_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    secure_home(home)
    (home / "new.txt").write_text("x")
    (home / "sub").mkdir()

    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "new.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "sub").stat().st_mode) == 0o700


def _legacy_dir(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 512))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), root / "good.pkl")
    manifest = {"²": "good.pkl", "9" * 5000: "good.pkl", "7": "bad\u0000name.pkl", "8": "good.pkl"}
    (root / "best_models.json").write_text(json.dumps(manifest))
    return root


def test_legacy_import_reports_each_entry_and_continues(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, output = invoke(
        "models", "import-legacy", str(_legacy_dir(tmp_path / "legacy")), "--home", str(home)
    )

    assert code == 1, output  # some entries failed
    assert "Traceback" not in output
    reports = [line for line in output.splitlines() if line.startswith("collection ")]
    assert len(reports) == 4, output  # one line per entry (MLflow's own logs aside)
    assert "collection ²: failed" in output and "not a collection id" in output
    assert "(5000 characters)" in output
    assert "collection 7: failed" in output and "NUL" in output
    assert "collection 8: imported good.pkl version 1 (champion)" in output


def test_the_registry_checked_is_the_one_the_tracking_uri_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml_platform.cli.errors import MissingHomeError, require_home
    from ml_platform.settings import Settings

    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere.db"
    elsewhere.write_bytes(b"")
    require_home(Settings(home=home, mlflow_tracking_uri=f"sqlite:///{elsewhere}"))
    missing = tmp_path / "missing.db"
    with pytest.raises(MissingHomeError, match=str(missing)):
        require_home(Settings(home=home, mlflow_tracking_uri=f"sqlite:///{missing}"))
    with pytest.raises(MissingHomeError, match="no model registry"):
        require_home(Settings(home=home))  # the default registry under home is missing too
    require_home(Settings(home=home), registry=False)  # serve: embed/detect need no registry
    require_home(Settings(home=home, mlflow_tracking_uri="http://127.0.0.1:5000"))


def _home_with_collections(root: Path) -> Path:
    from ml_platform.domain import Collection
    from ml_platform.settings import Settings
    from ml_platform.store.collections_file import write_collections
    from ml_platform.store.layout import Layout

    layout = Layout.for_settings(Settings(home=root))
    write_collections(layout, [Collection(1, "cats", None), Collection(4, "cups", None)])
    return root


@pytest.mark.parametrize(
    "command", [("labels", "suggest", "pets"), ("finetune", "--dataset", "pets")]
)
def test_malformed_datasets_file_is_one_sentence_naming_the_file_exit_4(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home = _home_with_collections(tmp_path / "home")
    (home / "datasets.yaml").write_text("datasets: {pets: {classes: {cat: 1, cup: 4}\n")
    code, output = invoke(*command, "--home", str(home))

    assert code == 4, output
    assert f"datasets file {home / 'datasets.yaml'}, line 2, column 1" in output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command", [("labels", "suggest", "pets"), ("finetune", "--dataset", "pets")]
)
def test_dataset_naming_collections_crawlr_lacks_names_them_before_any_work_exit_4(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home = _home_with_collections(tmp_path / "home")
    (home / "datasets.yaml").write_text(
        "datasets: {pets: {classes: {beagle: 12, cat: 1, boxer: 13}}}"
    )
    code, output = invoke(*command, "--home", str(home))

    assert code == 4, output
    assert "names collections crawlr does not have: beagle: 12, boxer: 13" in output
    assert "crawlr's collection ids are [1, 4]" in output
    assert not (home / "dagster").exists()  # no Dagster instance made: no work started


def test_run_against_unreachable_crawlr_fails_first_with_no_summary_exit_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers import free_port

    monkeypatch.setenv("ML_PLATFORM_CRAWLR_TIMEOUT_S", "1")
    monkeypatch.setenv("ML_PLATFORM_CRAWLR_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    code, output = invoke("run", "--home", str(tmp_path / "home"), "--crawlr", url)

    assert code == 5, output
    assert f"crawlr at {url} (ML_PLATFORM_CRAWLR or --crawlr) could not be read" in output
    assert "home:" not in output and "materialized" not in output and "wall time" not in output
