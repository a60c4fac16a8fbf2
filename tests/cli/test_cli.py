"""`ml-platform demo` as a user runs it: offline, twice, on a fresh home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.home import made_offline


def test_demo_runs_offline_labels_random_weights_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ML_PLATFORM_HOME", "HF_HUB_OFFLINE"):  # the CLI exports them
        monkeypatch.setenv(name, os.environ.get(name, str(tmp_path)))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # respected when set: not here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--home", str(tmp_path)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "OFFLINE" in first.output  # tests run with HF_HUB_OFFLINE=1 (tests/conftest.py)
    assert made_offline(tmp_path)  # `serve` and the other commands allow random weights there
    for cid in (1, 2, 3, 4):
        assert f"  {cid} '" in first.output
    assert first.output.count("champion v1 (weights=random)") == 4
    assert "no collection_focus" in first.output and "embed_siglip_so400m" in first.output
    # one vocabulary: why each collection was trained, then its champion; no contradiction
    assert "trained: collection 1 (why: never trained)" in first.output
    assert "no champion yet" not in first.output
    # the demo declares its dataset and names what to run next, `serve` last
    assert (
        tmp_path / "datasets.yaml"
    ).is_file() and "ml-platform labels suggest demo" in first.output
    assert first.output.strip().splitlines()[-1].startswith("serve the champions")
    assert f"ml-platform serve --home {tmp_path}" in first.output
    assert "wall time:" in first.output and "start-up included" in first.output
    second = runner.invoke(main, ["demo", "--home", str(tmp_path)], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "new ingestion batches: 0 []" in second.output
    assert "trained:" not in second.output
    listed = runner.invoke(main, ["models", "list", "--home", str(tmp_path)])
    assert listed.exit_code == 0 and listed.output.count("random") == 4
    assert "out-of-fold AP (cv_oof_average_precision)" in listed.output
