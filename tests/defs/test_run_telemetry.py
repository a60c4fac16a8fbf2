"""A finished run, read from a real Dagster instance's event log: one trace with a span per
step (partition, image count, focus, model version, run id), and the pipeline's figures."""

from __future__ import annotations

import dagster as dg

from ml_platform.defs.pipeline_metrics import PipelineExporter
from ml_platform.defs.run_telemetry import run_steps, trace_run
from tests.otlp_receiver import Receiver

PARTITIONS = dg.StaticPartitionsDefinition(["batch-1"])


@dg.asset(partitions_def=PARTITIONS)
def image_catalog() -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult(metadata={"images": 40, "failed": 3})


@dg.asset(partitions_def=PARTITIONS, deps=[image_catalog])
def collection_classifier() -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult(
        metadata={"focus": "whole_image__clip", "model_version": "7", "promoted": True}
    )


def materialized(instance: dg.DagsterInstance) -> str:
    result = dg.materialize(
        [image_catalog, collection_classifier], instance=instance, partition_key="batch-1"
    )
    assert result.success
    return result.run_id


def test_a_run_is_one_trace_with_a_span_per_step(otlp: Receiver) -> None:
    with dg.instance_for_test() as instance:
        run_id = materialized(instance)
        trace_run(instance, run_id)
    spans = otlp.collect()
    (run,) = [s for s in spans if s.name.startswith("run ")]
    steps = {s.name: s for s in spans if s.name.startswith("step ")}
    assert set(steps) == {"step image_catalog", "step collection_classifier"}
    assert {s.trace_id for s in spans} == {run.trace_id}
    assert all(s.parent_id == run.span_id for s in steps.values())
    classifier = steps["step collection_classifier"].attributes
    assert classifier["dagster.run_id"] == run_id
    assert classifier["dagster.partition"] == "batch-1"
    assert classifier["ml_platform.focus"] == "whole_image__clip"
    assert classifier["ml_platform.model_version"] == "7"
    assert steps["step image_catalog"].attributes["ml_platform.images"] == 40
    assert steps["step image_catalog"].start_ns <= steps["step collection_classifier"].start_ns


def test_the_exporter_reads_each_finished_run_once() -> None:
    with dg.instance_for_test() as instance:
        run_id = materialized(instance)
        exporter = PipelineExporter(instance)
        assert exporter.refresh() == 1 and exporter.refresh() == 0
        assert [s.key for s in run_steps(instance, run_id)] == [
            "image_catalog",
            "collection_classifier",
        ]
    sample = exporter.metrics.registry.get_sample_value
    assert sample("ml_platform_pipeline_download_failures_total") == 3
    assert sample("ml_platform_pipeline_promotions_total", {"promoted": "true"}) == 1
    assert sample("ml_platform_pipeline_images_count", {"asset": "image_catalog"}) == 1
    assert sample("ml_platform_pipeline_images_sum", {"asset": "image_catalog"}) == 40
    status = {"job": "__ephemeral_asset_job__", "status": "success"}
    assert sample("ml_platform_pipeline_runs_total", status) == 1
