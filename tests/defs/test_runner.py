"""`ml-platform run` end to end on the sample snapshot: ingest, perceive, train, promote.

Tiny CLIP/DINOv2 checkpoints saved as local directories stand in for the real weights (which
cannot be downloaded here); everything else is real: the Dagster instance under home, the
MLflow sqlite registry, the ledger and the Parquet outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.runner import RunSummary, run_once
from ml_platform.demo.sample import build_sample_snapshot
from ml_platform.model_registry.collection.lookup import list_models
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.settings import Settings

REQUIRED_TAGS = {t.value for t in (
    VersionTag.DERIVATIVE_TYPE, VersionTag.EMBEDDING_TYPE, VersionTag.EMBEDDER_ID,
    VersionTag.EMBEDDER_REVISION, VersionTag.WEIGHTS, VersionTag.DIMENSIONALITY,
    VersionTag.THRESHOLD, VersionTag.N_POSITIVES, VersionTag.N_NEGATIVES,
    VersionTag.DAGSTER_RUN_ID, VersionTag.DAGSTER_PARTITION,
)}  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def settings(home: Path, tiny_model_dirs: dict[str, Path]) -> Settings:
    snapshot = home / "sample_crawlr"
    build_sample_snapshot(snapshot)
    # The sample's two broken images are retried after the backoff: an hour, so that on a slow
    # machine no retry falls due between the runs these tests compare (planned == [] ...).
    return Settings(
        home=home, crawlr=str(snapshot), clip_model=str(tiny_model_dirs["clip"]),
        dino_model=str(tiny_model_dirs["dino"]), download_retry_backoff_s=3600.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def first_run(settings: Settings) -> RunSummary:
    return run_once(settings)


def test_first_run_materializes_the_whole_graph(first_run: RunSummary) -> None:
    assert first_run.failed_runs == []
    assert len(first_run.new_batches) == 1
    assets = {m.split("[")[0] for m in first_run.materialized}
    assert {"crawlr_collections", "image_catalog", "detections", "embeddings",
            "collection_classifier"} <= assets  # fmt: skip


def test_every_trainable_collection_has_a_champion_with_complete_tags(
    first_run: RunSummary, settings: Settings
) -> None:
    models = {
        m.collection_id: m for m in list_models(MlflowResource(home=str(settings.home)).client())
    }
    assert set(models) == {1, 2, 3, 4}  # every usable demo collection, all three derivatives
    for summary in models.values():
        assert summary.champion_version is not None
        assert set(summary.champion_tags) >= REQUIRED_TAGS
        assert summary.champion_tags[VersionTag.WEIGHTS] == "pretrained"  # local tiny checkpoints
    assert models[1].champion_tags[VersionTag.EMBEDDING_TYPE] == "embed_clip_vit_b_32"
    assert models[1].champion_tags[VersionTag.DIMENSIONALITY] == "16"
    assert models[4].champion_tags[VersionTag.DIMENSIONALITY] == "24"


def test_a_second_run_is_idempotent(first_run: RunSummary, settings: Settings) -> None:
    again = run_once(settings)
    assert again.failed_runs == []
    assert again.new_batches == [] and again.planned == []  # every batch complete
    assert again.retrained == []


def test_a_focus_change_embeds_existing_batches_and_retrains(
    first_run: RunSummary, settings: Settings
) -> None:
    path = Path(settings.crawlr_source) / "collections.json"
    collections = json.loads(path.read_text(encoding="utf-8-sig"))
    cats = next(c for c in collections if c["id"] == 1)
    cats["collection_focus"] = {"derivative_type_name": "whole_image",
                                "embedding_type_name": "embed_dino_v2"}  # fmt: skip
    path.write_text(json.dumps(collections))
    changed = run_once(settings)
    assert changed.failed_runs == []
    # whole_image/dino was already in use by collection 4: only the collections are refreshed
    assert [p.split("[")[0] for p in changed.planned] == ["collections_job"]
    assert any(r.startswith("collection 1 (why: focus changed") for r in changed.retrained)
    champion = next(
        m
        for m in list_models(MlflowResource(home=str(settings.home)).client())
        if m.collection_id == 1
    )
    assert champion.champion_tags[VersionTag.EMBEDDING_TYPE] == "embed_dino_v2"
    assert champion.champion_tags[VersionTag.DIMENSIONALITY] == "24"


def test_a_malformed_datasets_file_is_reported_and_the_rest_still_runs(
    first_run: RunSummary, settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "datasets.yaml"
    bad.write_text("datasets:\n  pets:\n    classes:\n      cat: 1\n")  # one class is not enough
    again = run_once(settings.model_copy(update={"datasets_file": bad}))
    assert again.planned == [] and again.retrained == []
    assert len(again.failed_runs) == 1
    assert "needs `classes:` with at least 2" in again.failed_runs[0]
