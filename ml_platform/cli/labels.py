"""`ml-platform labels suggest|accept DATASET`: zero-shot suggestions, reviewed and accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

# Dagster's console log quiet: a failure is the one sentence the command prints (exit 1).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
HOME = click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")


def _storage(home: Path | None) -> Any:
    from ml_platform.cli import _export, _settings
    from ml_platform.defs.resources import StorageResource

    settings = _settings(home)
    _export(settings)
    return settings, StorageResource(home=str(settings.resolved_home))


@click.group()
def labels() -> None:
    """AI label suggestions for a dataset's unlabelled images (kept apart from crawlr labels)."""


@labels.command()
@click.argument("dataset")
@click.option("--model", type=click.Choice(["clip", "siglip"]), default="clip", show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@HOME
def suggest(dataset: str, model: str, top_k: int, home: Path | None) -> None:
    """Run the label_suggestions asset for DATASET and list its suggestions."""
    from ml_platform.cli.datasets_input import checked_dataset
    from ml_platform.cli.errors import RunFailedError
    from ml_platform.cli.weights import home_rule
    from ml_platform.defs.assets.datasets import register_dataset_partitions
    from ml_platform.defs.runner import Platform, instance_for, run_failure
    from ml_platform.services.label_suggestions import read_suggestions

    settings, storage = _storage(home)
    specs, _ = checked_dataset(settings, dataset)
    settings = home_rule(settings)
    instance = instance_for(settings)
    register_dataset_partitions(instance, sorted(specs))
    platform = Platform.for_settings(settings, settings.allow_random_weights or None)
    job = platform.definitions().resolve_job_def("label_suggestions_job")
    config = {"ops": {"label_suggestions": {"config": {"model": model, "top_k": top_k}}},
              **QUIET}  # fmt: skip
    result = job.execute_in_process(
        instance=instance, partition_key=dataset, run_config=config, raise_on_error=False
    )
    if not result.success:
        raise RunFailedError(f"label_suggestions failed: {run_failure(result)}")
    found = read_suggestions(storage.layout(), dataset)
    click.echo(f"{len(found.suggestions)} unlabelled images, model {found.model} "
               f"(weights={found.weights}, threshold {found.threshold}):")  # fmt: skip
    for s in found.suggestions:
        shown = ", ".join(f"{label} ({c:.2f})" for label, c in s.labels) or "no class"
        click.echo(f"  image {s.image_id}: {shown}")


@labels.command()
@click.argument("dataset")
@click.option("--image", "image_ids", type=int, multiple=True, help="Accept only these images.")
@click.option("--min-confidence", type=float, default=0.0, show_default=True)
@HOME
def accept(
    dataset: str, image_ids: tuple[int, ...], min_confidence: float, home: Path | None
) -> None:
    """Accept the top suggestion of each (chosen) image as its label in DATASET."""
    from ml_platform.defs.dataset_planning import accepted_labels
    from ml_platform.domain import WeightsStatus
    from ml_platform.services.label_suggestions import read_suggestions, to_accept

    _, storage = _storage(home)
    try:
        found = read_suggestions(storage.layout(), dataset)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    chosen = to_accept(found, list(image_ids) or None, min_confidence)
    written = accepted_labels(storage).accept(chosen)
    for label in chosen:
        click.echo(f"  image {label.image_id}: {label.label} ({label.confidence:.2f})")
    click.echo(f"accepted {written} suggested labels for {dataset} (marked accepted_suggestion); "
               "the next `datasets` materialization makes a new version with them")  # fmt: skip
    if found.weights == WeightsStatus.RANDOM.value:
        click.echo(f"they were suggested by {found.model} with weights=random: they carry no "
                   "meaning, and neither does a model trained on them (its dataset version, "
                   "model tags and /v1/predict answers will say label_weights=random)")  # fmt: skip
