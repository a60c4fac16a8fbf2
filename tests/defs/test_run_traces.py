"""`ml-platform run` traced: each Dagster run of the pass is one trace at a real OTLP/HTTP
receiver, with one span per step the instance's event log records (tiny local checkpoints
stand in for the real weights; the instance, registry and store are real)."""

from __future__ import annotations

from pathlib import Path

from ml_platform.defs.run_telemetry import run_steps
from ml_platform.defs.runner import instance_for, run_once
from ml_platform.demo.sample import build_sample_snapshot
from ml_platform.settings import Settings
from tests.otlp_receiver import Receiver


def test_every_run_of_a_pass_is_a_trace_with_one_span_per_step(
    tmp_path: Path, tiny_model_dirs: dict[str, Path], otlp: Receiver
) -> None:
    snapshot = tmp_path / "sample_crawlr"
    build_sample_snapshot(snapshot)
    settings = Settings(home=tmp_path / "home", crawlr=str(snapshot),
                        clip_model=str(tiny_model_dirs["clip"]),
                        dino_model=str(tiny_model_dirs["dino"]))  # fmt: skip
    assert run_once(settings).failed_runs == []
    spans = otlp.collect()
    runs = {s.attributes["dagster.run_id"]: s for s in spans if s.name.startswith("run ")}
    instance = instance_for(settings)
    assert set(runs) == {r.run_id for r in instance.get_runs()}
    for run_id, run in runs.items():
        steps = [s for s in spans if s.parent_id == run.span_id]
        assert sorted(s.name for s in steps) == sorted(
            f"step {r.key}" for r in run_steps(instance, run_id)
        )
        assert {s.trace_id for s in steps} == {run.trace_id}
        assert all(run.start_ns <= s.start_ns <= s.end_ns <= run.end_ns for s in steps)
    trained = [s for s in spans if s.name.startswith("step collection_classifier")]
    assert trained, [s.name for s in spans]
    for step in trained:
        assert step.attributes["dagster.partition"]
        assert "__" in str(step.attributes["ml_platform.focus"])  # e.g. whole_image__embed_clip
        assert str(step.attributes["ml_platform.model_version"]).isdigit()
    catalog = next(s for s in spans if s.name == "step image_catalog")
    assert isinstance(catalog.attributes["ml_platform.images"], int)
