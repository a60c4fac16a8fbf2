"""`ml-platform finetune --dataset NAME`: datasets + finetuned_classifier on the home's instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ml_platform.learning.finetune.config import ModelName

# Dagster's console log quiet: a failure is the one sentence the command prints (exit 1).
CONSOLE_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SHOWN = {
    "datasets": ("version", "new_version", "split_totals", "label_sources", "label_weights",
                 "labels_from_random_suggestions"),
    "finetuned_classifier": (
        "model", "model_version", "promoted", "decision", "train_loss", "val_accuracy",
        "best_epoch", "test_accuracy", "seconds_per_epoch", "base_weights", "label_weights",
        "labels_from_random_suggestions", "mlflow_run",
    ),
}  # fmt: skip


class _EpochBar:
    """A rich progress bar advanced by the fine-tuning loop's epoch events."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None

    def started(self, dataset: str, epochs: int) -> None:
        self.task = self.progress.add_task(f"fine-tuning {dataset}", total=epochs)

    def epoch(self, dataset: str, metrics: Any) -> None:
        text = (f"epoch {metrics.epoch}/{metrics.epochs} loss {metrics.train_loss:.3f} "
                f"val acc {metrics.val_accuracy:.3f} ({metrics.seconds:.0f}s)")  # fmt: skip
        self.progress.update(self.task, completed=metrics.epoch, description=text)
        self.progress.console.print(f"  {text}")


def _config(**given: str | int | None) -> dict[str, Any]:
    return {key: value for key, value in given.items() if value is not None}


@click.command()
@click.option("--dataset", required=True, help="A dataset declared in the datasets file.")
@click.option("--model", "model_name", type=click.Choice([m.value for m in ModelName]),
              default=None, help="Architecture (default efficientnet_lite0).")  # fmt: skip
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Most epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--weights", default=None, help="Base weights: hub id, local dir or .pth file.")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")
def finetune(
    dataset: str, model_name: str | None, epochs: int | None, batch_size: int | None,
    weights: str | None, home: Path | None,
) -> None:  # fmt: skip
    """Make a new DATASET version and fine-tune a classifier on it (visible in the Dagster UI)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ml_platform.cli import _export, _settings
    from ml_platform.cli.datasets_input import checked_dataset
    from ml_platform.defs.assets.datasets import register_dataset_partitions
    from ml_platform.defs.runner import Platform, instance_for
    from ml_platform.model_registry.tracking import owner_tags
    from ml_platform.services.finetune_progress import listening

    settings = _settings(home)
    _export(settings)
    specs, _ = checked_dataset(settings, dataset)
    instance = instance_for(settings)
    register_dataset_partitions(instance, sorted(specs))
    job = Platform.for_settings(settings, None).definitions().resolve_job_def("finetune_job")
    config = _config(model_name=model_name, epochs=epochs, batch_size=batch_size, weights=weights)
    run_config = {"ops": {"finetuned_classifier": {"config": {"training": config}}},
                  **CONSOLE_QUIET}  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress, listening(_EpochBar(progress)):
        result = job.execute_in_process(instance=instance, partition_key=dataset, tags=owner_tags(),
                                        run_config=run_config, raise_on_error=False)  # fmt: skip
    _print_outcome(result)


def _print_outcome(result: Any) -> None:
    """A failure first, as one sentence (exit 1) and nothing else; else what was made."""
    from ml_platform.cli.errors import RunFailedError
    from ml_platform.defs.runner import run_failure
    from ml_platform.services.label_provenance import labels_notice

    if not result.success:
        raise RunFailedError(
            f"finetune failed: {run_failure(result)} (Dagster run {result.run_id})"
        )
    notice = None
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        metadata = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        click.echo(f"{key}:")
        for name in SHOWN.get(key, ()):
            if name in metadata:
                click.echo(f"  {name}: {metadata[name]}")
        if key == "finetuned_classifier":
            notice = labels_notice({k: str(v) for k, v in metadata.items()})
    if notice:  # the rule: a model trained on random-weight output says so where it is shown
        click.echo(f"WARNING: training labels {notice}")
    click.echo(f"Dagster run {result.run_id}: succeeded")
