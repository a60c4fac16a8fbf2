"""What a finished Dagster run tells an operator, read from the run's event log: one trace
(a span for the run, one per step, with the step's partition, image count, focus and model
version) and the pipeline's Prometheus figures (step durations, images per batch, download
failures, retrains, promotions).

The event log is the source because it is the same whatever ran the steps (in process,
subprocesses, Celery, k8s pods): nothing in a step process needs instrumenting, and a run is
observed after the fact with its real timestamps. `trace_run` is called by the runner after
each run; `PipelineExporter` serves `/metrics` for Prometheus from the instance
(`ml-platform pipeline-metrics`), reading each finished run once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
from prometheus_client import CollectorRegistry, Counter, Histogram

from ml_platform import telemetry
from ml_platform.domain import Stage
from ml_platform.services.planning import JobName

PREFIX = "ml_platform_pipeline"
STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
IMAGE_BUCKETS = (1, 10, 50, 100, 200, 500, 1000, 5000)
# Materialization metadata that becomes a step span's attributes (`ml_platform.<key>`).
TRACED_METADATA = ("images", "images_scored", "failed", "focus", "model_version", "version",
                   "promoted", "status")  # fmt: skip
RETRAIN_JOBS = (JobName.TRAINING.value, JobName.FINETUNE.value)


@dataclass
class StepRecord:
    key: str
    start_s: float
    end_s: float
    ok: bool = True
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)  # by asset

    def value(self, name: str) -> object:
        """`name` from the first of the step's materializations that has it."""
        return next((m[name] for m in self.metadata.values() if name in m), None)


def run_steps(instance: dg.DagsterInstance, run_id: str) -> list[StepRecord]:
    """The run's steps that started, in start order, from their STEP_START to their last
    event, with their materializations' plain metadata (a run's plan events come earlier)."""
    steps: dict[str, StepRecord] = {}
    for entry in instance.all_logs(run_id):
        event, key = entry.dagster_event, entry.step_key
        if event is None or key is None:
            continue
        if event.event_type is dg.DagsterEventType.STEP_START:
            steps[key] = StepRecord(key, entry.timestamp, entry.timestamp)
        step = steps.get(key)
        if step is None:
            continue
        step.end_s = max(step.end_s, entry.timestamp)
        if event.event_type is dg.DagsterEventType.STEP_FAILURE:
            step.ok = False
        materialization = entry.asset_materialization
        if materialization is not None:
            asset = materialization.asset_key.to_user_string()
            step.metadata[asset] = {k: v.value for k, v in materialization.metadata.items()
                                    if isinstance(v.value, str | int | float | bool)}  # fmt: skip
    return sorted(steps.values(), key=lambda s: s.start_s)


def trace_run(instance: dg.DagsterInstance, run_id: str) -> None:
    """Export the finished run as one trace: the run's span and a span per step."""
    if telemetry.tracer() is None:
        return
    run, steps = instance.get_run_by_id(run_id), run_steps(instance, run_id)
    if run is None or not steps:
        return
    partition = run.tags.get("dagster/partition")
    common = {"dagster.run_id": run_id, "dagster.job": run.job_name, "dagster.partition": partition}
    start, end = min(s.start_s for s in steps), max(s.end_s for s in steps)
    with telemetry.record_span(f"run {run.job_name}", _ns(start), _ns(end), common):
        for step in steps:
            attributes = {**common, **_step_attributes(step)}
            with telemetry.record_span(f"step {step.key}", _ns(step.start_s), _ns(step.end_s),
                                       attributes):  # fmt: skip
                pass
    telemetry.flush()


def _step_attributes(step: StepRecord) -> dict[str, str | int | float | bool | None]:
    traced = {f"ml_platform.{k}": _plain(step.value(k)) for k in TRACED_METADATA}
    return {"dagster.step": step.key, "dagster.step.ok": step.ok, **traced}


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _plain(value: object) -> str | int | float | bool | None:
    return value if isinstance(value, str | int | float | bool) else None


class PipelineMetrics:
    """The pipeline's figures in their own registry (what `ml-platform pipeline-metrics`
    serves)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.step_seconds = Histogram(
            f"{PREFIX}_step_seconds", "Duration of one run step, by job, step and outcome.",
            ["job", "step", "status"], buckets=STEP_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.images = Histogram(
            f"{PREFIX}_images", "Images per batch, by asset (the `images` metadata).",
            ["asset"], buckets=IMAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.download_failures = Counter(
            f"{PREFIX}_download_failures", "Images whose download failed (image_catalog).",
            registry=self.registry,
        )  # fmt: skip
        self.runs = Counter(f"{PREFIX}_runs", "Finished runs by job and status.",
                            ["job", "status"], registry=self.registry)  # fmt: skip
        self.retrains = Counter(f"{PREFIX}_retrains", "Finished training and fine-tuning runs.",
                                ["job"], registry=self.registry)  # fmt: skip
        self.promotions = Counter(
            f"{PREFIX}_promotions", "Gate decisions on trained models, promoted or not.",
            ["promoted"], registry=self.registry,
        )  # fmt: skip

    def observe(self, job: str, status: str, steps: list[StepRecord]) -> None:
        self.runs.labels(job=job, status=status).inc()
        if job in RETRAIN_JOBS:
            self.retrains.labels(job=job).inc()
        for step in steps:
            outcome = "success" if step.ok else "failure"
            self.step_seconds.labels(job=job, step=step.key, status=outcome).observe(
                step.end_s - step.start_s
            )
            for asset, metadata in step.metadata.items():
                self._observe_asset(asset, metadata)

    def _observe_asset(self, asset: str, metadata: dict[str, object]) -> None:
        images, failed, promoted = (metadata.get(k) for k in ("images", "failed", "promoted"))
        if isinstance(images, int):
            self.images.labels(asset=asset).observe(images)
        if asset == Stage.CATALOG.value and isinstance(failed, int):
            self.download_failures.inc(failed)
        if isinstance(promoted, bool):
            self.promotions.labels(promoted=str(promoted).lower()).inc()
