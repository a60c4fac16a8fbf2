"""The full Definitions load, validate and contain the graph the README describes."""

from __future__ import annotations

import dagster as dg

from ml_platform.defs.definitions import defs


def test_full_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"crawlr_collections", "image_catalog", "detections", "embeddings"} <= keys
    upstream = graph.get(dg.AssetKey("embeddings")).parent_keys
    assert {k.to_user_string() for k in upstream} == {
        "image_catalog",
        "detections",
        "crawlr_collections",
    }
    sensors = {s.name for s in defs.sensors or []}
    # one planner for batches, one for datasets, one for label changes (`ml-platform run`
    # calls the same three); a failing champion-health check's retrain, run-failure alerts,
    # and the clean-up of runs a dead process left (`run` calls the same function)
    assert sensors == {"planner_sensor", "dataset_sensor", "label_sensor", "leftovers_sensor",
                       "health_retrain_sensor", "alert_on_run_failure"}  # fmt: skip
    schedules = {s.name for s in defs.schedules or []}
    assert schedules == {"nightly_retrain_schedule", "nightly_finetune_schedule",
                         "daily_health_schedule"}  # fmt: skip
    health = graph.get(dg.AssetKey("champion_health"))
    assert {k.to_user_string() for k in health.parent_keys} == {"collection_classifier"}
