"""The planner as a pure function: what is missing, stale or new, and the one run for it.

The graph it plans on is the one the Definitions declare (defs/batch_graph.py)."""

from __future__ import annotations

import pytest

from ml_platform.defs.batch_graph import batch_graph
from ml_platform.domain import Stage
from ml_platform.services.planning import (
    DoneState,
    JobName,
    batch_state,
    foci_version,
    plan_batches,
    plan_collections,
)

FOCI = ["whole_image__embed_clip_vit_b_32", "prominent_face__embed_dino_v2"]
GRAPH = batch_graph()


def all_done(batch: str, foci: list[str] = FOCI, base: int = 10) -> DoneState:
    latest = {stage: {batch: base + i} for i, stage in enumerate(Stage)}
    return DoneState(latest=latest, graph=GRAPH, foci_versions={batch: foci_version(foci)})


def test_the_planner_reads_what_the_definitions_declare_heroes_read() -> None:
    heroes = set(GRAPH.reads[Stage.HEROES])
    assert heroes == {Stage.CLUSTERS, Stage.DETECTIONS, Stage.CATALOG, Stage.THUMBNAILS}
    assert GRAPH.reads[Stage.CATALOG] == ()
    assert GRAPH.job_of[Stage.EMBEDDINGS] is JobName.INGEST
    assert GRAPH.job_of[Stage.THUMBNAILS] is JobName.CLUSTERS
    assert set(GRAPH.reads) == set(Stage)


@pytest.mark.parametrize("newer", [Stage.THUMBNAILS, Stage.DETECTIONS])
def test_a_newer_input_of_the_heroes_re_plans_them(newer: Stage) -> None:
    done = all_done("b1")
    latest = {s: dict(v) for s, v in done.latest.items()}
    latest[newer] = {"b1": 100}
    state = batch_state("b1", DoneState(latest, GRAPH, done.foci_versions), FOCI)
    assert Stage.HEROES in state.stale
    (run,) = plan_batches(["b1"], DoneState(latest, GRAPH, done.foci_versions), FOCI, {})
    assert run.job in (JobName.INGEST, JobName.CLUSTERS)


def test_a_batch_with_every_stage_newer_than_its_input_is_complete() -> None:
    assert batch_state("b1", all_done("b1"), FOCI).complete
    assert plan_batches(["b1"], all_done("b1"), FOCI, {}) == []


def test_a_batch_killed_during_embeddings_gets_its_ingest_run_again() -> None:
    done = all_done("b1")
    latest = {s: dict(v) for s, v in done.latest.items()}
    for stage in (Stage.EMBEDDINGS, Stage.CLUSTERS, Stage.HEROES, Stage.SIMILARITY):
        latest[stage] = {}
    (run,) = plan_batches(["b1"], DoneState(latest=latest, graph=GRAPH), FOCI, {})
    assert run.job is JobName.INGEST and run.partition_key == "b1"
    assert "embeddings" in run.reason


def test_clusters_older_than_the_embeddings_are_stale() -> None:
    done = all_done("b1")
    latest = {s: dict(v) for s, v in done.latest.items()}
    latest[Stage.EMBEDDINGS] = {"b1": 100}
    state = batch_state("b1", DoneState(latest, GRAPH, done.foci_versions), FOCI)
    assert set(state.stale) == {Stage.CLUSTERS, Stage.SIMILARITY, Stage.DRIFT}
    (run,) = plan_batches(["b1"], DoneState(latest, GRAPH, done.foci_versions), FOCI, {})
    assert run.job is JobName.CLUSTERS


def test_a_new_focus_asks_for_embeddings_only() -> None:
    done = all_done("b1", foci=FOCI[:1])
    (run,) = plan_batches(["b1"], done, FOCI, {})
    assert run.job is JobName.EMBEDDINGS and run.partition_key == "b1"


def test_downloads_due_for_retry_re_run_the_catalog() -> None:
    (run,) = plan_batches(["b1"], all_done("b1"), FOCI, {"b1": [7, 9]})
    assert run.job is JobName.INGEST and "2 downloads due for retry" in run.reason


def test_the_run_key_changes_only_when_the_state_does() -> None:
    empty = DoneState(latest={}, graph=GRAPH)
    first = plan_batches(["b1"], empty, FOCI, {})
    again = plan_batches(["b1"], empty, FOCI, {})
    assert first == again  # a retried tick asks for the same run: Dagster dedupes it
    done = all_done("b1")
    latest = {s: dict(v) for s, v in done.latest.items()}
    latest[Stage.EMBEDDINGS] = {"b1": 100}
    later = plan_batches(["b1"], DoneState(latest, GRAPH, done.foci_versions), FOCI, {})
    assert later[0].run_key != first[0].run_key


def test_collections_refresh_only_when_the_reply_changed() -> None:
    assert plan_collections("abc", "abc") is None
    run = plan_collections("abd", "abc")
    assert run is not None and run.job is JobName.COLLECTIONS
    first = plan_collections("abc", None)
    assert first is not None and first.reason == "never materialized"
