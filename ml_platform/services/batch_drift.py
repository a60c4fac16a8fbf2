"""Drift of what arrives: each new batch against what the champions trained on.

Per focus in use, the batch's embeddings are compared with the champions' training
embeddings: the focus's vectors of the batches registered before the newest champion of a
collection with that focus was created (training reads every image of the focus registered
by then: members, rejections and a sample of the rest), at most `reference_size` of them,
sampled with a fixed seed. The sample is cached per (focus, champion versions) in the store
(`store.drift_table.reference_key`), so a batch reads its own embeddings and the cached
sample, not every earlier batch; a new champion gets a new sample. The test is
`learning.drift.window_mmd_test`: the MMD of the batch alone and of the batch with the focus's
batch before it (when the champions never saw that one; `services.drift_reference.
previous_batch`), Bonferroni over the two (MMD chosen over a domain classifier, the window
over the batch alone, by `benchmarks/champion_health.py`; copies, flips and crops of one photo
count once on each side). Per collection with a champion, the share of the batch its
champion predicts positive is compared with the share it predicts on those training-time
images (`share_test`).

Every p-value is calibrated (a permutation test, Fisher's exact test), so the check's level is
a false-alarm rate: `alpha` per batch, family-wise (Bonferroni), half for the embedding tests
and half for the share tests. The `batch_drift` asset writes the rows
(`store.drift_table`), and its check WARNs on a drifted batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
from mlflow import MlflowClient
from numpy.typing import NDArray

from ml_platform.alerts import Alert, AlertConfig, AlertKind, Severity, alert_check, links_of
from ml_platform.domain import Collection, Focus
from ml_platform.learning.drift import check_levels, permutations_for, share_test, window_mmd_test
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import VersionTag, model_name
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.services.champion_health import load_version
from ml_platform.services.drift_reference import previous_batch, training_reference
from ml_platform.services.training_data import load_focus
from ml_platform.settings import Settings
from ml_platform.store.alert_log import AlertLog
from ml_platform.store.drift_table import DriftRow, read_drift
from ml_platform.store.layout import Layout

DRIFT_ASSET = "batch_drift"
SEED = 0  # the MMD test's permutations


class DriftStatus(StrEnum):
    OK = "ok"
    DRIFTED = "drifted"
    NOT_EVALUATED = "not_evaluated"  # no champion, no embeddings, another embedder


@dataclass(frozen=True)
class DriftConfig:
    alpha: float
    reference_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftConfig:
        return cls(settings.drift_alpha, settings.drift_reference_size)


@dataclass(frozen=True)
class BatchDriftReport:
    batch: str
    rows: tuple[DriftRow, ...]
    evaluated_at: datetime
    collections_of_focus: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def status(self) -> DriftStatus:
        if any(r.drifted for r in self.rows):
            return DriftStatus.DRIFTED
        ran = any(math.isfinite(r.p_value) for r in self.rows)
        return DriftStatus.OK if ran else DriftStatus.NOT_EVALUATED

    @property
    def drifted_collections(self) -> tuple[int, ...]:
        """The collections a drifted test concerns (a focus's: every collection of it with a
        champion)."""
        out: set[int] = set()
        for r in self.rows:
            if r.drifted:
                extra = self.collections_of_focus.get(r.focus, ())
                out.update(extra if r.collection_id is None else (r.collection_id,))
        return tuple(sorted(out))

    @property
    def reason(self) -> str:
        said = [r.reason for r in self.rows if r.drifted] or [r.reason for r in self.rows]
        return "; ".join(said) or "no collection with a focus"


@dataclass(frozen=True)
class FocusInputs:
    """One focus's batch and reference vectors, and the champions judged on them."""

    focus: Focus
    batch: NDArray[np.float32]
    reference: NDArray[np.float32]
    champions: dict[int, ModelVersionInfo]
    reason: str = ""
    previous: NDArray[np.float32] | None = None  # the focus's batch before, if new to them


def evaluate_batch_drift(
    client: MlflowClient,
    layout: Layout,
    collections: list[Collection],
    batch: str,
    config: DriftConfig,
    artifact_root: str | None = None,
) -> BatchDriftReport:
    """Every test of `batch`, with its level and outcome (nothing is written)."""
    now = datetime.now(UTC)
    champions = {c.id: v for c in collections if c.usable and (v := get_champion(client, c.id))}
    foci = sorted({c.focus for c in collections if c.usable and c.focus is not None})
    inputs = [focus_inputs(layout, batch, f, _of_focus(collections, f, champions), config)
              for f in foci]  # fmt: skip
    ready = [i for i in inputs if not i.reason]
    n_shares = sum(len(i.champions) for i in ready)
    embed_level, share_level = check_levels(config.alpha, len(ready), n_shares)
    rows: list[DriftRow] = []
    for i in inputs:
        rows.append(embedding_row(batch, i, embed_level))
        if not i.reason:
            models = {cid: load_version(client, v, artifact_root) for cid, v in i.champions.items()}
            rows += [share_row(batch, i, cid, m, share_level) for cid, m in models.items()]
    by_focus = {i.focus.key: tuple(sorted(i.champions)) for i in inputs}
    return BatchDriftReport(batch, tuple(rows), now, by_focus)


def _of_focus(
    collections: list[Collection], focus: Focus, champions: dict[int, ModelVersionInfo]
) -> dict[int, ModelVersionInfo]:
    return {c.id: champions[c.id] for c in collections if c.focus == focus and c.id in champions}


def focus_inputs(
    layout: Layout,
    batch: str,
    focus: Focus,
    champions: dict[int, ModelVersionInfo],
    config: DriftConfig,
) -> FocusInputs:
    """The batch's and the reference's vectors of `focus`, or the reason there are none."""
    empty = np.zeros((0, 0), np.float32)
    if not champions:
        return FocusInputs(focus, empty, empty, {}, "no collection of this focus has a champion")
    arrived = load_focus(layout, focus, [batch])
    same = {c: v for c, v in champions.items()
            if v.tags.get(VersionTag.EMBEDDER_ID.value) == arrived.embedder.model_id}  # fmt: skip
    if len(arrived.ids) < 2 or not same:
        why = "fewer than 2 embeddings in the batch" if len(arrived.ids) < 2 else (
            f"no champion uses this batch's embedder {arrived.embedder.model_id!r}")  # fmt: skip
        return FocusInputs(focus, empty, empty, {}, why)
    reference = training_reference(layout, focus, batch, same, arrived.embedder.model_id,
                                   config.reference_size)  # fmt: skip
    if reference is None:
        return FocusInputs(focus, empty, empty, {}, "fewer than 2 training-time embeddings")
    before = previous_batch(layout, focus, batch, same, arrived.embedder.model_id)
    return FocusInputs(focus, arrived.vectors, reference, same, previous=before)


def embedding_row(batch: str, inputs: FocusInputs, level: float) -> DriftRow:
    """The focus's MMD test (the batch alone, and with the focus's previous batch when there
    is one: `window_mmd_test`), with enough permutations to reach `level` (or why not run)."""
    n_batch, n_ref = len(inputs.batch), len(inputs.reference)
    if inputs.reason:
        said = f"{inputs.focus.key}: not evaluated: {inputs.reason}"
        return DriftRow(batch, inputs.focus.key, None, None, math.nan, math.nan, level, n_batch,
                        n_ref, False, said)  # fmt: skip
    n_before = 0 if inputs.previous is None else len(inputs.previous)
    test = window_mmd_test(inputs.batch, inputs.previous, inputs.reference,
                           permutations_for(level / (2 if n_before else 1)), seed=SEED)  # fmt: skip
    drifted = test.p_value < level
    with_before = f" (and with {n_before} of the batch before)" if n_before else ""
    said = (f"{inputs.focus.key}: {n_batch} embeddings{with_before} vs {n_ref} training-time: "
            f"MMD^2 {test.statistic:.4f}, p={test.p_value:.4f} "
            f"(drifted below {level:.4g})")  # fmt: skip
    return DriftRow(batch, inputs.focus.key, None, None, test.statistic, test.p_value, level,
                    n_batch, n_ref, drifted, said)  # fmt: skip


def share_row(
    batch: str, inputs: FocusInputs, cid: int, model: CollectionClassifierModel, level: float
) -> DriftRow:
    """Collection `cid`'s predicted-positive share of the batch vs of the reference."""
    version = inputs.champions[cid]
    k, m = _positives(model, inputs.batch)
    k0, n = _positives(model, inputs.reference)
    test = share_test(k, m, k0, n)
    drifted = test.p_value < level
    said = (f"collection {cid} v{version.version}: {k} of {m} predicted positive ({k / m:.0%}) "
            f"vs {k0 / n:.0%} of {n} training-time, p={test.p_value:.4f}")  # fmt: skip
    return DriftRow(batch, inputs.focus.key, cid, version.version, test.statistic, test.p_value,
                    level, m, n, drifted, said)  # fmt: skip


def _positives(model: CollectionClassifierModel, vectors: NDArray[np.float32]) -> tuple[int, int]:
    proba = np.asarray(model.estimator.predict_proba(vectors), np.float64)[:, 1]
    return int(np.sum(proba >= model.threshold)), len(vectors)


def alert_drift(
    alerts: AlertLog, config: AlertConfig, report: BatchDriftReport, dagster_run_id: str | None
) -> str:
    """Alert on the batch (the subject) once when it drifted, `resolved` when a re-run finds
    it clean (`alert_check`); a batch not evaluated changes nothing. Returns what it did."""
    if report.status is DriftStatus.NOT_EVALUATED:
        return "none (not evaluated)"
    severity = Severity.WARN if report.status is DriftStatus.DRIFTED else None
    return alert_check(alerts, config, f"batch {report.batch}", severity,
                       drift_alert(report, config, dagster_run_id))  # fmt: skip


def drift_alert(report: BatchDriftReport, config: AlertConfig, dagster_run_id: str | None) -> (
    Alert
):  # fmt: skip
    """The alert of a batch's drift: each drifted test's statistic and p-value, the
    champions of the collections concerned, links to the asset and the run."""
    ui = links_of(config)
    links = {"dagster_asset": ui.dagster_asset(DRIFT_ASSET)}
    if dagster_run_id:
        links["dagster_run"] = ui.dagster_run(dagster_run_id)
    drifted = [r for r in report.rows if r.drifted]
    figures = {}
    for r in drifted:
        figures[f"{series_name(r)} p_value"] = r.p_value
        figures[f"{series_name(r)} statistic"] = r.statistic
    cids = report.drifted_collections
    only = cids[0] if len(cids) == 1 else None
    return Alert(
        kind=AlertKind.DRIFT_CHECK_FAILED,
        summary=f"batch {report.batch} {report.status.value}: {report.reason}",
        collection_id=only,
        model=None if only is None else model_name(only),
        versions={"batch": report.batch, **{f"collection_{r.collection_id}": r.champion_version
                                              for r in drifted if r.collection_id is not None}},
        figures=figures,
        links=links,
        at=report.evaluated_at,
    )  # fmt: skip


def series_name(row: DriftRow) -> str:
    """The test's name over batches: `embeddings <focus>` or `collection <id> share`."""
    if row.collection_id is None:
        return f"embeddings {row.focus}"
    return f"collection {row.collection_id} share"


def drift_history(layout: Layout, upto: str, limit: int = 60) -> list[tuple[str, list[DriftRow]]]:
    """(batch, its rows) for the `limit` batches registered up to `upto`, oldest first."""
    keys = layout.metadata().batch_keys()
    keys = keys[: keys.index(upto) + 1] if upto in keys else [*keys, upto]
    return [(key, read_drift(layout, key)) for key in keys[-limit:]]
