"""`ml-platform models ...`: list, show, promote, rollback and import-legacy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click


def _client(home: Path | None, *, create: bool = False) -> Any:
    """The registry client of `home`; unless `create`, the home and its registry must exist."""
    from ml_platform.cli.errors import require_home
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.home import secure_home
    from ml_platform.settings import Settings

    settings = Settings(home=home) if home else Settings()
    secure_home(settings.resolved_home)
    if not create:
        require_home(settings)
    return MlflowResource(home=str(home) if home else None).client()


def _artifact_location(home: Path | None) -> str | None:
    from ml_platform.defs.resources.mlflow import MlflowResource

    return MlflowResource(home=str(home) if home else None).artifact_location()


def _json(value: Any) -> str:
    is_record = dataclasses.is_dataclass(value) and not isinstance(value, type)
    return json.dumps(dataclasses.asdict(value) if is_record else value, indent=2, default=str)


HOME = click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def models() -> None:
    """Collection classifiers in the MLflow registry (aliases champion / challenger)."""


@models.command("list")
@HOME
@AS_JSON
def list_cmd(home: Path | None, as_json: bool) -> None:
    """Every collection model and every dataset model with its champion and challenger
    versions; versions registered but never gated are listed too."""
    from ml_platform.model_registry.collection.lookup import list_models
    from ml_platform.model_registry.dataset.lookup import list_dataset_models

    client = _client(home)
    summaries, datasets = list_models(client), list_dataset_models(client)
    if as_json:
        click.echo(_json([dataclasses.asdict(s) for s in [*summaries, *datasets]]))
        return
    # The AP the promotion gate compares (the champion's tag cv_oof_average_precision), under
    # the name the demo, the asset metadata and MLflow give it.
    click.echo(
        f"{'collection':>10}  {'champion':>8}  {'challenger':>10}  "
        "focus / weights / out-of-fold AP (cv_oof_average_precision)"
    )
    for s in summaries:
        t = s.champion_tags
        focus = f"{t.get('derivative_type', '-')}/{t.get('embedding_type', '-')}"
        click.echo(
            f"{s.collection_id!s:>10}  {s.champion_version or '-':>8}  "
            f"{s.challenger_version or '-':>10}  {focus} / {t.get('weights', '-')} / "
            f"{_rounded(t.get('cv_oof_average_precision'))}{_ungated(s.ungated_versions)}"
        )
    if datasets:
        click.echo(f"\n{'dataset model':<22}  {'champion':>8}  {'challenger':>10}  "
                   "model / weights / label weights / test accuracy")  # fmt: skip
    for s in datasets:
        t = s.champion_tags
        click.echo(
            f"{s.name:<22}  {s.champion_version or '-':>8}  {s.challenger_version or '-':>10}  "
            f"{t.get('model_name', '-')} / {t.get('weights', '-')} / "
            f"{t.get('label_weights', '-')} / "
            f"{t.get('test_accuracy', '-')}{_ungated(s.ungated_versions)}"
        )


def _ungated(versions: tuple[str, ...]) -> str:
    return f"  (never gated: v{', v'.join(versions)})" if versions else ""


def _rounded(value: str | None) -> str:
    """A figure as the gate's sentences print it (4 decimals), or '-' when absent."""
    try:
        return f"{float(value):.4f}" if value is not None else "-"
    except ValueError:
        return value or "-"


@models.command()
@click.argument("collection_id", type=int)
@HOME
@AS_JSON
def show(collection_id: int, home: Path | None, as_json: bool) -> None:
    """One collection's versions, tags, aliases and promotion history."""
    from ml_platform.model_registry.collection.lookup import show as show_model

    details = show_model(_client(home), collection_id)
    if details is None:
        raise click.ClickException(f"collection {collection_id} has no registered model")
    if as_json:
        click.echo(_json(details))
        return
    s = details.summary
    click.echo(
        f"{s.name}: champion {s.champion_version or '-'}, challenger {s.challenger_version or '-'}"
    )
    for v in details.versions:
        click.echo(f"  version {v.version} {list(v.aliases)} created {v.created_at:%Y-%m-%d %H:%M}")
        for key in sorted(v.tags):
            click.echo(f"    {key} = {v.tags[key]}")
    click.echo("promotion history:")
    for h in details.history:
        click.echo(f"  {h.at} {h.action} {h.previous or '-'} -> {h.version}: {h.reason}")


@models.command()
@click.argument("collection_id", type=int)
@click.argument("version")
@click.option("--reason", default="promoted from the CLI")
@HOME
def promote(collection_id: int, version: str, reason: str, home: Path | None) -> None:
    """Make VERSION the champion of COLLECTION_ID."""
    from ml_platform.model_registry.collection.register import promote as promote_version
    from ml_platform.model_registry.versions import ModelNotFoundError

    try:
        entry = promote_version(_client(home), collection_id, version, reason)
    except ModelNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"collection {collection_id}: champion {entry.previous or '-'} -> {entry.version}")


@models.command()
@click.argument("collection_id", type=int)
@HOME
def rollback(collection_id: int, home: Path | None) -> None:
    """Move COLLECTION_ID's champion back to the previous champion."""
    from ml_platform.model_registry.aliases import NoPreviousChampionError
    from ml_platform.model_registry.collection.register import rollback as rollback_champion
    from ml_platform.model_registry.versions import ModelNotFoundError

    try:
        entry = rollback_champion(_client(home), collection_id)
    except (ModelNotFoundError, NoPreviousChampionError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"collection {collection_id}: champion {entry.previous} -> {entry.version}")


@models.command("import-legacy")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@HOME
@AS_JSON
def import_legacy_cmd(directory: Path, home: Path | None, as_json: bool) -> None:
    """Register the scikit-learn pickles listed in DIRECTORY/best_models.json."""
    from ml_platform.model_registry.legacy import LegacyStatus, import_legacy
    from ml_platform.settings import Settings
    from ml_platform.vision.embedders.by_name import known_embedding_types
    from ml_platform.vision.embedders.options import embedder_options

    client = _client(home, create=True)
    servable = known_embedding_types(embedder_options(Settings(home=home) if home else Settings()))
    outcomes = import_legacy(
        directory, client, artifact_location=_artifact_location(home),
        servable_embedding_types=servable,
    )  # fmt: skip
    if as_json:
        click.echo(_json([dataclasses.asdict(o) for o in outcomes]))
    for o in outcomes if not as_json else []:
        detail = (
            f"version {o.version}{' (champion)' if o.champion else ''}" if o.version else o.reason
        )
        click.echo(f"collection {o.key}: {o.status.value} {o.model_file or ''} {detail}")
    if any(o.status is LegacyStatus.FAILED for o in outcomes):
        raise SystemExit(1)


@models.command("prune-orphans")
@HOME
@click.option("--dry-run", is_flag=True, help="List them only.")
def prune_orphans(home: Path | None, dry_run: bool) -> None:
    """Remove logged-model directories no model version uses (left by a killed training)."""
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.services.leftovers import orphaned_models, remove_orphans

    client = _client(home)
    root = MlflowResource(home=str(home) if home else None).artifact_root()
    orphans = orphaned_models(client, root)
    for orphan in orphans:
        click.echo(f"{'would remove' if dry_run else 'removing'} {orphan.path}: {orphan.reason}")
    removed = 0 if dry_run else remove_orphans(orphans)
    click.echo(f"{len(orphans)} orphaned model directories; {removed} removed")
