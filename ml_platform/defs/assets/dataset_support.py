"""Launchpad configs and metadata of the dataset assets (kept out of the asset bodies).

The configs take their defaults from the pure configuration objects (`FinetuneConfig`,
`SuggestionSettings`) and convert back to them, so the CLI, the launchpad and tests share
one set of defaults and one validation.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from ml_platform.defs.assets.registry_links import gate_check, mlflow_links, registration
from ml_platform.defs.knobs import knobs_of
from ml_platform.learning.finetune import FinetuneConfig
from ml_platform.services.dataset_versions import DatasetVersion
from ml_platform.services.finetuning import FinetuneOutcome
from ml_platform.services.label_suggestions import DEFAULT_THRESHOLDS, SuggestionSettings
from ml_platform.vision.zero_shot import ZeroShotKind

_S = SuggestionSettings()


def _choice(kind: type[Any], value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{field}={value!r}; choose one of {[k.value for k in kind]}") from None


class FinetuneKnobs(knobs_of(FinetuneConfig)):  # type: ignore[misc]
    """`learning.finetune.FinetuneConfig` in the launchpad: architecture and training recipe."""


class FinetuneAssetConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: the fine-tuning knobs (nested, from FinetuneConfig) and the
    promotion gate's tolerance."""

    training: FinetuneKnobs = FinetuneKnobs()
    promotion_tolerance: float = 0.02

    def finetune(self) -> FinetuneConfig:
        config: FinetuneConfig = self.training.build(FinetuneConfig)
        return config


class LabelSuggestionConfig(dg.Config):  # type: ignore[misc]
    """Shown in the launchpad: zero-shot model, top-k and the threshold of each model."""

    model: str = _S.model.value
    model_id: str | None = None  # None: the clip_model / siglip_model setting
    top_k: int = _S.top_k
    thresholds: dict[str, float] = dict(DEFAULT_THRESHOLDS)
    max_images: int = _S.max_images

    def suggestions(self) -> SuggestionSettings:
        return SuggestionSettings(
            model=_choice(ZeroShotKind, self.model, "model"), top_k=self.top_k,
            thresholds=dict(self.thresholds), max_images=self.max_images,
        )  # fmt: skip


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
    }


def finetune_result(
    check: str,
    outcome: FinetuneOutcome,
    ui_url: str,
    tracking_uri: str,
    tags: dict[str, str] | None = None,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
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
