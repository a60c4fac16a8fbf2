"""What is missing, and which run makes it: one planner for the sensors and `ml-platform run`.

Dagster owns "what is done": for each per-batch stage, the storage id of its newest
materialization per partition, and the foci the newest `embeddings` materialization covered.
A batch is complete when every stage has materialized and each stage is newer than every
stage it reads. Anything else is missing work, and each missing piece maps to exactly one job
run, named by a run key that changes only when the state does (so a retried tick asks again
for the same run, and Dagster's run-key dedupe keeps it single). What each stage reads and
which job makes it are not written here: `BatchGraph` carries them as the Definitions declare
them (`defs/batch_graph.py` reads the asset graph and the job selections).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ml_platform.domain import Stage


def foci_version(foci: Sequence[str]) -> str:
    """The data version an `embeddings` materialization carries: a digest of the foci it
    covered. The planner compares it with the digest of the foci in use now."""
    return hashlib.sha1(",".join(sorted(foci)).encode()).hexdigest()[:16]


class JobName(StrEnum):
    COLLECTIONS = "collections_job"
    INGEST = "ingest_job"
    EMBEDDINGS = "embeddings_job"
    CLUSTERS = "clusters_job"
    TRAINING = "training_job"
    DATASET_VERSIONS = "dataset_versions_job"
    FINETUNE = "finetune_job"


# The jobs that complete a batch, in the order they run: a stage is made by the first that
# selects it (`embeddings_job` only re-embeds when the foci in use change).
BATCH_JOBS = (JobName.INGEST, JobName.CLUSTERS)


@dataclass(frozen=True)
class BatchGraph:
    """The per-batch stages as the Definitions declare them: the stages each one reads (its
    per-batch parents in the asset graph) and the job that makes it."""

    reads: Mapping[Stage, tuple[Stage, ...]]
    job_of: Mapping[Stage, JobName]


@dataclass(frozen=True)
class PlannedRun:
    job: JobName
    partition_key: str | None
    reason: str
    run_key: str


@dataclass(frozen=True)
class DoneState:
    """What Dagster knows: newest materialization storage id per stage and partition."""

    latest: Mapping[Stage, Mapping[str, int]]
    graph: BatchGraph
    foci_versions: Mapping[str, str] = field(default_factory=dict)

    def stamp(self, stage: Stage, batch: str) -> int | None:
        return self.latest.get(stage, {}).get(batch)


@dataclass(frozen=True)
class BatchState:
    batch: str
    missing: tuple[Stage, ...]
    stale: tuple[Stage, ...]
    foci_changed: bool

    @property
    def complete(self) -> bool:
        return not (self.missing or self.stale or self.foci_changed)


def batch_state(batch: str, done: DoneState, foci: Sequence[str]) -> BatchState:
    missing, stale = [], []
    for stage, upstreams in done.graph.reads.items():
        stamp = done.stamp(stage, batch)
        if stamp is None:
            missing.append(stage)
            continue
        inputs = [done.stamp(upstream, batch) for upstream in upstreams]
        if any(before is not None and before > stamp for before in inputs):
            stale.append(stage)
    embedded = done.stamp(Stage.EMBEDDINGS, batch) is not None
    changed = embedded and done.foci_versions.get(batch) != foci_version(foci)
    return BatchState(batch, tuple(missing), tuple(stale), changed)


def plan_batch(state: BatchState, done: DoneState, retry_due: int = 0) -> PlannedRun | None:
    """The one run that moves this batch forward, or None when it is complete."""
    key = state.batch
    todo = [*state.missing, *state.stale]
    if retry_due:
        todo.append(Stage.CATALOG)
    ingest = [s for s in todo if done.graph.job_of[s] is JobName.INGEST]
    token = ".".join(str(done.stamp(s, key) or 0) for s in done.graph.reads)
    if ingest:
        why = f"{', '.join(sorted(set(ingest)))} missing or stale"
        if retry_due:
            why += f"; {retry_due} downloads due for retry"
        return PlannedRun(JobName.INGEST, key, why, f"{JobName.INGEST}:{key}:{token}:r{retry_due}")
    if state.foci_changed:
        why = "the foci in use changed since this batch was embedded"
        run_key = f"{JobName.EMBEDDINGS}:{key}:{token}:{done.foci_versions.get(key)}"
        return PlannedRun(JobName.EMBEDDINGS, key, why, run_key)
    if todo:
        why = f"{', '.join(sorted(set(todo)))} missing or stale"
        return PlannedRun(JobName.CLUSTERS, key, why, f"{JobName.CLUSTERS}:{key}:{token}")
    return None


def plan_batches(
    batches: Sequence[str],
    done: DoneState,
    foci: Sequence[str],
    retries_due: Mapping[str, Sequence[int]],
) -> list[PlannedRun]:
    """One run per incomplete batch, oldest batch first."""
    plans = []
    for batch in batches:
        state = batch_state(batch, done, foci)
        plan = plan_batch(state, done, len(retries_due.get(batch, ())))
        if plan is not None:
            plans.append(plan)
    return plans


def plan_collections(
    current_digest: str | None, materialized_digest: str | None
) -> PlannedRun | None:
    """Refresh `crawlr_collections` when crawlr's reply differs from the one last materialized."""
    if current_digest is None or current_digest == materialized_digest:
        return None
    why = "never materialized" if materialized_digest is None else "crawlr's collections changed"
    run_key = f"{JobName.COLLECTIONS}:{materialized_digest}->{current_digest}"
    return PlannedRun(JobName.COLLECTIONS, None, why, run_key)
