"""What the dataset assets return: a version's metadata and split table, a fine-tune's result."""

from __future__ import annotations

from typing import Any

import dagster as dg

from ml_platform.defs.assets.registry_links import gate_check, mlflow_links, registration
from ml_platform.services.dataset_versions import DatasetVersion
from ml_platform.services.finetuning import FinetuneOutcome
from ml_platform.services.label_provenance import LabelProvenance


def counts_table(version: DatasetVersion) -> str:
    rows = [f"| {label} | {c['train']} | {c['val']} | {c['test']} |"
            for label, c in version.counts().items()]  # fmt: skip
    return "| class | train | val | test |\n|---|---|---|---|\n" + "\n".join(rows)


def version_metadata(version: DatasetVersion, new: bool) -> dict[str, Any]:
    return {
        "version": version.version,
        "digest": version.digest,
        "new_version": new,
        "classes": len(version.classes),
        "images": len(version.items),
        "split_totals": dg.MetadataValue.json(version.split_totals()),
        "label_sources": dg.MetadataValue.json(version.source_totals()),
        "conflicts": dg.MetadataValue.json(list(version.conflicts)),
        "counts": dg.MetadataValue.md(counts_table(version)),
        # warning: these classes had too few pets for a val and a test pet; split by image
        "regrouped_by_image": dg.MetadataValue.json(list(version.regrouped)),
        **version.label_provenance().tags(),  # label_weights=random: labels carry no meaning
    }


def finetune_result(
    check: str,
    outcome: FinetuneOutcome,
    ui_url: str,
    tracking_uri: str,
    tags: dict[str, str] | None = None,
    labels: LabelProvenance | None = None,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """`labels`: the trained version's label provenance, shown beside the base weights."""
    registered, result, decision = outcome.registered, outcome.result, outcome.decision
    history = [
        {
            "epoch": m.epoch,
            "train_loss": round(m.train_loss, 4),
            "val_loss": round(m.val_loss, 4),
            "val_accuracy": m.val_accuracy,
        }
        for m in (result.history if result else ())
    ]
    trained: dict[str, Any] = {"trained": result is not None}
    if result is not None:
        trained |= {
            "train_loss": result.train_loss, "val_loss": result.val_loss,
            "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        }  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            **registration(registered, decision, outcome.champion_before),
            **trained,
            "test_accuracy": outcome.test_accuracy,
            "base_weights": outcome.base_weights,
            **(labels.tags() if labels else {}),
            "epochs": dg.MetadataValue.json(history),
            **mlflow_links(registered, ui_url, tracking_uri),
        },
        check_results=[
            gate_check(
                check, decision.promote, decision.reason, {"model_version": registered.version}
            )
        ],
        tags=tags,
    )
