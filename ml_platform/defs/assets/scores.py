"""`collection_scores`: the champion's probability for every image of the collection's focus,
with the model version that gave it, and the non-blocking `label_audit` check.

Each (image, champion version) is scored once (services/curation_scores.py). Metadata: the
version, what this run scored, and a contact sheet of the top 16 suggestions; the check
carries the audit's counts and a contact sheet of its surest issues.
"""

import io
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from PIL import Image

from ml_platform.defs.assets.cluster_pictures import inline_png
from ml_platform.defs.partitions import (
    collection_partitions,
    every_batch_of,
    partitioned_check_spec,
)
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.domain import Stage
from ml_platform.learning.curation.audit import IssueKind
from ml_platform.services.curation import label_issues, suggestions
from ml_platform.services.curation_scores import (
    ChampionView,
    CurationError,
    champion_view,
    update_scores,
)
from ml_platform.services.training_data import catalogued_batches
from ml_platform.store.layout import Layout
from ml_platform.store.thumbnails_table import has_thumbnails, read_thumbnails
from ml_platform.vision.contact_sheet import SheetRow, Tile, contact_sheet

AUDIT = "label_audit"
SHEET_SIZE = 16

AUDIT_SPEC = partitioned_check_spec(
    AUDIT,
    "collection_scores",
    "Members the champion's out-of-fold probabilities say do not belong, and rejections "
    "they say do (confident learning). Warns when it finds any; never changes a label.",
    collection_partitions,
)


@dg.asset(
    group_name="classifiers",
    partitions_def=collection_partitions,
    deps=["collection_classifier", every_batch_of(Stage.EMBEDDINGS.value)],
    check_specs=[AUDIT_SPEC],
    kinds={"parquet"},
)
def collection_scores(
    context: dg.AssetExecutionContext, storage: StorageResource, mlflow: MlflowResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Scores the images of the focus the champion version has not scored yet."""
    cid, layout = int(context.partition_key), storage.layout()
    try:
        view = champion_view(layout, mlflow.client(), cid, mlflow.artifact_root())
    except CurationError as exc:
        return dg.MaterializeResult(
            metadata={"skipped": True, "reason": str(exc)},
            check_results=[_check(False, f"no audit: {exc}", {"reason": str(exc)})],
        )
    update = update_scores(layout, view)
    top = suggestions(layout, view, limit=SHEET_SIZE).suggestions
    thumbs = _thumbnails(layout, {s.image_id for s in top})
    metadata: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "model_version": dg.MetadataValue.text(view.version),
        "batches_scored": dg.MetadataValue.int(len(update.batches)),
        "images_scored": dg.MetadataValue.int(update.images),
    }
    if top:
        tiles = tuple(
            Tile(thumbs.get(s.image_id), f"#{s.image_id} {s.probability:.2f}") for s in top
        )
        sheet = contact_sheet([SheetRow(f"collection {cid}: top suggestions", tiles)])
        metadata["suggestions"] = inline_png(sheet, f"top {len(top)} suggestions (id, p)")
    return dg.MaterializeResult(metadata=metadata, check_results=[_audit(layout, view, cid)])


def _audit(layout: Layout, view: ChampionView, cid: int) -> dg.AssetCheckResult:
    try:
        issues = label_issues(layout, view).issues
    except CurationError as exc:
        return _check(False, f"no audit: {exc}", {"reason": str(exc)})
    counts = {kind.value: sum(i.kind is kind for i in issues) for kind in IssueKind}
    metadata: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        k: dg.MetadataValue.int(v) for k, v in counts.items()
    }
    shown = issues[:SHEET_SIZE]
    if shown:
        thumbs = _thumbnails(layout, {i.image_id for i in shown})
        tiles = tuple(
            Tile(thumbs.get(i.image_id), f"#{i.image_id} {_short(i.kind)} {i.score:.2f}")
            for i in shown
        )
        sheet = contact_sheet([SheetRow(f"collection {cid}: label issues", tiles)])
        metadata["issues"] = inline_png(sheet, "surest label issues (id, kind, score)")
    text = f"{len(issues)} possible label issues: " + ", ".join(
        f"{v} {k}" for k, v in counts.items()
    )
    return _check(not issues, text, metadata)


def _short(kind: IssueKind) -> str:
    return "not member?" if kind is IssueKind.LIKELY_NOT_MEMBER else "member?"


def _check(passed: bool, description: str, metadata: Mapping[str, Any]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=AUDIT, passed=passed, severity=dg.AssetCheckSeverity.WARN,
        description=description, metadata=dict(metadata),
    )  # fmt: skip


def _thumbnails(
    layout: Layout, ids: set[int], batches: Sequence[str] | None = None
) -> dict[int, Image.Image]:
    out: dict[int, Image.Image] = {}
    for key in batches or catalogued_batches(layout):
        if ids and has_thumbnails(layout, key):
            for image_id, row in read_thumbnails(layout, key, ids=ids).items():
                if row.data is not None:
                    out[image_id] = Image.open(io.BytesIO(row.data))
    return out
