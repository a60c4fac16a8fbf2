"""End to end on a real crawlr test server: labels change in crawlr after ingestion -> the
label sensor (or `ml-platform run`) applies them -> exactly the changed collections retrain,
in one training run each, and a new champion trained on the new labels is registered.
Nothing is downloaded or embedded again.

The sample snapshot's photos are served over HTTP by `tests.crawlr_server`; tiny CLIP/DINOv2
checkpoints stand in for the real weights; the Dagster instance under home, the MLflow sqlite
registry and the metadata database are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import RunSummary, instance_for, run_once
from ml_platform.defs.sensors import label_sensor
from ml_platform.demo.sample import build_sample_snapshot
from ml_platform.model_registry.collection.lookup import list_models
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.model_registry.versions import ModelSummary
from ml_platform.settings import Settings
from tests.crawlr_server import CrawlrServer, CrawlrState


def sample_state(snapshot: Path) -> CrawlrState:
    """The sample snapshot as a crawlr server's state (relative urls, served from files)."""
    build_sample_snapshot(snapshot)
    collections = json.loads((snapshot / "collections.json").read_text(encoding="utf-8-sig"))
    images = json.loads((snapshot / "images.json").read_text())["images"]
    files = {"/" + im["url"]: (snapshot / im["url"]).read_bytes() for im in images}
    return CrawlrState(collections=collections, images=images, files=files)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> CrawlrState:
    return sample_state(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture(scope="module")
def server(state: CrawlrState) -> Iterator[CrawlrServer]:
    with CrawlrServer(state) as server:
        yield server


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, server: CrawlrServer, tiny_model_dirs: dict[str, Path]
) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("home"), crawlr=server.url,
        clip_model=str(tiny_model_dirs["clip"]), dino_model=str(tiny_model_dirs["dino"]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def first_run(settings: Settings) -> RunSummary:
    summary = run_once(settings)
    assert summary.failed_runs == []
    return summary


def models(settings: Settings) -> dict[int | None, ModelSummary]:
    client = MlflowResource(home=str(settings.home)).client()
    return {m.collection_id: m for m in list_models(client)}


def members(state: CrawlrState, cid: int) -> list[dict[str, object]]:
    return [im for im in state.images if cid in im["collection_ids"] and im["id"] < 900]


def reject_two_members(state: CrawlrState, cid: int, when: str) -> list[int]:
    """A moderator rejects two members of `cid` from it, in crawlr, after ingestion."""
    moved = [int(str(im["id"])) for im in members(state, cid)[:2]]
    for image_id in moved:
        image = next(im for im in state.images if im["id"] == image_id)
        kept = [c for c in image["collection_ids"] if c != cid]
        rejected = sorted({*image.get("rejected_collection_ids", []), cid})
        state.relabel(image_id, kept, rejected, updated_at=when)
    return moved


def image_hits(state: CrawlrState) -> int:
    return sum(n for path, n in state.hits.items() if path.startswith("/images/"))


def test_a_relabel_seen_by_the_sensor_retrains_exactly_that_collection(
    first_run: RunSummary, settings: Settings, server: CrawlrServer, state: CrawlrState
) -> None:
    everything = models(settings)
    before = everything[1]
    downloads = image_hits(state)
    moved = reject_two_members(state, 1, "2025-05-01T10:00:00Z")
    instance = instance_for(settings)
    home = str(settings.home)
    resources = {"crawlr": CrawlrResource(home=home, source=server.url),
                 "storage": StorageResource(home=home)}  # fmt: skip
    result = label_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SensorResult)
    assert [(r.job_name, r.partition_key) for r in result.run_requests or []] == [
        ("training_job", "1")
    ]
    after = run_once(settings)  # executes what the sensor requested (the same planner)
    assert after.failed_runs == [] and after.planned == []  # no ingest, no embeddings
    assert after.retrained == ["collection 1 (why: training data changed since the last training)"]
    # one training run, scored by its champion for the curation answers
    assert after.materialized == ["collection_classifier[1]", "collection_scores[1]"]
    assert image_hits(state) == downloads  # nothing downloaded again
    now = models(settings)
    assert now[1].champion_version is not None
    assert int(now[1].champion_version) > int(before.champion_version or 0)
    positives = int(before.champion_tags[VersionTag.N_POSITIVES])
    assert int(now[1].champion_tags[VersionTag.N_POSITIVES]) == positives - 2
    assert {c: now[c].champion_version for c in (2, 3, 4)} == {
        c: everything[c].champion_version for c in (2, 3, 4)
    }
    answers = curation_answers(settings, 1)  # the moderator's three views, from the new champion
    assert {a["model_version"] for a in answers.values()} == {now[1].champion_version}
    suggested = {s["image_id"] for s in answers["suggest"]["suggestions"]}
    assert not suggested & set(moved)  # rejected in crawlr: never suggested back


def curation_answers(settings: Settings, cid: int) -> dict[str, dict[str, object]]:
    """`ml-platform suggest / audit / review-queue CID --json`, as a moderator runs them."""
    answers = {}
    for command in ("suggest", "audit", "review-queue"):
        args = [command, str(cid), "--json", "--home", str(settings.home)]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        answers[command] = json.loads(result.output)
    return answers


def test_a_relabel_seen_by_run_retrains_exactly_that_collection(
    first_run: RunSummary, settings: Settings, state: CrawlrState
) -> None:
    before = models(settings)
    reject_two_members(state, 4, "2025-05-02T10:00:00Z")
    after = run_once(settings)
    assert after.failed_runs == [] and after.planned == []
    assert len(after.labels) == 1 and "collections [4]" in after.labels[0]
    assert after.retrained == ["collection 4 (why: training data changed since the last training)"]
    assert after.materialized == ["collection_classifier[4]", "collection_scores[4]"]
    now = models(settings)
    assert int(now[4].champion_version or 0) > int(before[4].champion_version or 0)
    assert {c: now[c].champion_version for c in (1, 2, 3)} == {
        c: before[c].champion_version for c in (1, 2, 3)
    }
    again = run_once(settings)
    assert again.retrained == [] and again.materialized == []  # applied once, trained once
