"""The Dagster UI on a demo-like home (the sample crawlr snapshot, nothing run yet) shows the
asset graph in a real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ml_platform.demo.sample import build_sample_snapshot
from tests.browser import browser  # noqa: F401 (fixture)
from tests.servers import free_port, wait_for

# crawlr_collections' lineage: itself, then (one step on) the embeddings and classifier nodes
LINEAGE = "/assets/crawlr_collections?view=lineage"
ASSETS_SHOWN = ("crawlr_collections", "embeddings", "collection_classifier")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dagster-webserver` on the platform's Definitions, a free 127.0.0.1 port, a fresh home."""
    home = tmp_path_factory.mktemp("ui_home")
    build_sample_snapshot(home / "sample_crawlr")
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").touch()
    env = {
        **os.environ,
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_CRAWLR": str(home / "sample_crawlr"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    port = free_port()
    command = [sys.executable, "-m", "dagster_webserver", "-m", "ml_platform.defs.definitions",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    log = (home / "webserver.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url + "/server_info"), "dagster-webserver", timeout_s=240)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


def test_dagster_ui_shows_the_asset_graph(dagster_ui: str, browser: Any) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(dagster_ui + LINEAGE)
    page.get_by_text("collection_classifier", exact=True).first.wait_for(timeout=120_000)
    text = page.inner_text("body")
    page.close()

    assert "Global asset lineage" not in text and "crawlr_collections" in text
    assert all(asset in text for asset in ASSETS_SHOWN)
