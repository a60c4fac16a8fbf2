"""What the planner thinks each per-batch stage reads, and which job makes it: read from the
Definitions (the asset graph's parents and the job selections), never written a second time.
"""

from __future__ import annotations

import functools

import dagster as dg

from ml_platform.domain import Stage
from ml_platform.services.planning import BATCH_JOBS, BatchGraph, JobName


@functools.cache
def batch_graph() -> BatchGraph:
    """The platform's batch graph (its Definitions are built once per process)."""
    from ml_platform.defs.definitions import build_definitions

    return graph_of(build_definitions())


def graph_of(defs: dg.Definitions) -> BatchGraph:
    """Each `Stage`'s per-batch parents in ``defs``' asset graph, and the first of
    `BATCH_JOBS` whose selection holds it."""
    assets = defs.resolve_asset_graph()
    keys = {dg.AssetKey(stage.value): stage for stage in Stage}
    reads = {
        stage: tuple(keys[p] for p in sorted(assets.get(key).parent_keys, key=str) if p in keys)
        for key, stage in keys.items()
    }
    return BatchGraph(reads=reads, job_of=_job_of(defs, assets, list(keys)))


def _job_of(
    defs: dg.Definitions, assets: object, stages: list[dg.AssetKey]
) -> dict[Stage, JobName]:
    jobs = {job.name: job for job in defs.jobs or []}
    job_of: dict[Stage, JobName] = {}
    for name in BATCH_JOBS:
        selection = getattr(jobs[name.value], "selection", None)
        if selection is None:
            raise TypeError(f"{name.value} must be an asset job (dg.define_asset_job)")
        selected = selection.resolve(assets)
        for key in stages:
            if key in selected:
                job_of.setdefault(Stage(key.path[-1]), name)
    if missing := [s.value for s in Stage if s not in job_of]:
        raise ValueError(f"no job of {[j.value for j in BATCH_JOBS]} selects {missing}")
    return job_of
