"""Every metric the Grafana dashboard (deploy/grafana/ml-platform.json) queries is one that
the server's /metrics or the pipeline's exporter actually exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg

from ml_platform.defs.pipeline_metrics import PipelineExporter
from tests.serving.conftest import AppFactory

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "ml-platform.json"
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count", "_created"), "counter": ("_created",)}


def queried_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    assert len(exprs) >= 15
    return {name for expr in exprs for name in re.findall(r"\bml_platform_[a-z_]+", expr)}


def exported(exposition: str) -> set[str]:
    """Series names an exposition holds, from its `# TYPE` lines (labelled or not yet
    observed ones included)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        names.add(name)
        base = name.removesuffix("_total")
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ()))
    return names


def test_every_dashboard_query_names_an_exported_metric(make_app: AppFactory) -> None:
    server = make_app().client.get("/metrics")
    assert server.status_code == 200
    with dg.instance_for_test() as instance:
        pipeline = PipelineExporter(instance).exposition().decode()
    available = exported(server.text) | exported(pipeline)
    queried = queried_metrics()
    assert queried - available == set()
    assert {n for n in queried if n.startswith("ml_platform_pipeline_")}  # both are on it
    assert {n for n in queried if n.startswith("ml_platform_serving_model_memory")}


def test_the_deploy_compose_provisions_this_dashboard() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    assert "./deploy/grafana/ml-platform.json:" in doc
    assert json.loads(DASHBOARD.read_text())["uid"] == "ml-platform"
