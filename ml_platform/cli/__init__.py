"""The `ml-platform` command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from ml_platform.cli.errors import VERBOSE, PlatformGroup, require_home
from ml_platform.home import secure_home
from ml_platform.redact import redact_url
from ml_platform.settings import Settings


def _settings(home: Path | None, crawlr: str | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if crawlr is not None:
        overrides["crawlr"] = crawlr
    settings = Settings(**overrides)  # type: ignore[arg-type]
    secure_home(settings.resolved_home)
    return settings


def _export(settings: Settings) -> None:
    """Child processes (Dagster, MLflow) see the same home. DAGSTER_HOME, when set, is kept:
    `settings.dagster_home` reads it; only commands that exec Dagster export it."""
    os.environ["ML_PLATFORM_HOME"] = str(settings.resolved_home)


OFFLINE_NOTICE = (
    "OFFLINE: the model hub is unreachable, so CLIP and DINOv2 use pretrained weights only if "
    "they are in the local cache, else RANDOM weights. Everything made from random weights is "
    "tagged weights=random and carries no meaning."
)

HOME_OPTION = click.option(
    "--home", type=click.Path(path_type=Path), default=None,
    help="Platform home (default: ML_PLATFORM_HOME, else ~/.ml-platform).",
)  # fmt: skip


@click.group(cls=PlatformGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level; tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """ml_platform: crawlr image collections as Dagster assets, classifiers in MLflow."""
    ctx.meta[VERBOSE] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@HOME_OPTION
def demo(home: Path | None) -> None:
    """Build the built-in sample crawlr snapshot under home and run everything on it, offline."""
    from ml_platform.demo.offline import hub_offline
    from ml_platform.demo.sample import build_sample_snapshot

    settings = _settings(home)
    settings = settings.model_copy(update={"crawlr": str(settings.sample_snapshot_dir)})
    _export(settings)
    created = build_sample_snapshot(settings.sample_snapshot_dir)
    state = "new" if created else "kept"
    click.echo(f"sample crawlr snapshot: {settings.sample_snapshot_dir} ({state})")
    allow_random = None
    if hub_offline():
        os.environ["HF_HUB_OFFLINE"] = "1"  # local cache only: no retries against the hub
        allow_random = True
        click.echo(OFFLINE_NOTICE)
    from ml_platform.cli.progress import job_progress
    from ml_platform.defs.runner import (
        run_once,
    )  # after HF_HUB_OFFLINE: the hub client reads it once

    with job_progress("demo") as on_job:
        summary = run_once(settings, allow_random_weights=allow_random, on_job=on_job)
    _print_summary(summary, settings)


@main.command()
@HOME_OPTION
@click.option("--crawlr", default=None, help="crawlr base URL or snapshot directory.")
def run(home: Path | None, crawlr: str | None) -> None:
    """One pass of what the sensors and schedules do, against any crawlr source."""
    from ml_platform.cli.progress import job_progress
    from ml_platform.defs.runner import run_once

    settings = _settings(home, crawlr)
    _export(settings)
    with job_progress("run") as on_job:
        summary = run_once(settings, on_job=on_job)
    _print_summary(summary, settings)


@main.command()
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def status(home: Path | None, as_json: bool) -> None:
    """What the home holds: images, embeddings per focus, failures, complete batches."""
    import json

    from ml_platform.defs.resources import StorageResource
    from ml_platform.defs.runner import instance_for
    from ml_platform.defs.status import platform_status

    settings = _existing_home(home)
    _export(settings)
    report = platform_status(
        instance_for(settings), StorageResource(home=str(settings.resolved_home))
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=1))
        return
    _print_status(report.as_json())


@main.command("retry-failed")
@HOME_OPTION
def retry_failed(home: Path | None) -> None:
    """Re-queue quarantined image downloads; the next tick (or `run`) tries them again."""
    from ml_platform.defs.resources import StorageResource
    from ml_platform.domain import AttemptStatus, Stage

    settings = _existing_home(home)
    db = StorageResource(home=str(settings.resolved_home)).metadata()
    ids = db.requeue(Stage.CATALOG.value, [AttemptStatus.QUARANTINED])
    click.echo(f"re-queued {len(ids)} quarantined downloads: {ids[:20]}")


def _existing_home(home: Path | None) -> Settings:
    """Settings for a home that must already exist: reading commands never create one."""
    settings = _settings(home)
    if not (settings.resolved_home / "data").is_dir():
        raise click.ClickException(
            f"{settings.resolved_home} is not an ml_platform home (no data/ folder); "
            "run `ml-platform demo` or `ml-platform run` first, or pass --home"
        )
    return settings


def _print_status(report: dict[str, object]) -> None:
    images = report["images"]
    batches = report["batches"]
    assert isinstance(images, dict) and isinstance(batches, dict)
    click.echo("images:  " + "  ".join(f"{k}={v}" for k, v in images.items()))
    click.echo("batches: " + "  ".join(f"{k}={v}" for k, v in batches.items()))
    foci = report["foci"]
    assert isinstance(foci, dict)
    for key, counts in foci.items():
        click.echo(f"  {key}: " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    failures = report["failures"]
    assert isinstance(failures, list)
    click.echo(f"failures: {len(failures)}")
    for item in failures[:20]:
        click.echo(
            f"  image {item['image_id']} {item['stage']} x{item['attempts']}: {item['reason']}"
        )


def _print_summary(summary: object, settings: Settings) -> None:
    from ml_platform.defs.runner import RunSummary

    assert isinstance(summary, RunSummary)
    click.echo(f"home: {summary.home}")
    click.echo(f"crawlr: {redact_url(summary.crawlr)}")
    click.echo(f"new ingestion batches: {len(summary.new_batches)} {summary.new_batches}")
    click.echo(f"materialized ({len(summary.materialized)}):")
    for line in summary.materialized:
        click.echo(f"  - {line}")
    for line in summary.retrained:
        click.echo(f"trained: {line}")
    for line in summary.skipped:
        click.echo(f"skipped: {line}")
    _print_collections(settings)
    click.echo(f"wall time: {summary.seconds:.1f} s")
    click.echo(f"Dagster UI:  ml-platform dagster-ui --home {settings.resolved_home}")
    click.echo(f"MLflow UI:   ml-platform mlflow-ui --home {settings.resolved_home}")
    if summary.failed_runs:
        for line in summary.failed_runs:
            click.echo(f"FAILED: {line}", err=True)
        raise SystemExit(1)


def _print_collections(settings: Settings) -> None:
    """Each collection's state: its champion (with the weights it rests on) or why none."""
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.model_registry.lookup import list_models
    from ml_platform.store.collections_file import has_collections, read_collections
    from ml_platform.store.layout import Layout

    layout = Layout.for_settings(settings)
    if not has_collections(layout):
        return
    client = MlflowResource(home=str(settings.resolved_home)).client()
    champions = {m.collection_id: m for m in list_models(client)}
    click.echo("collections:")
    for c in read_collections(layout):
        model = champions.get(c.id)
        if model is None or model.champion_version is None:
            state = c.unusable_reason or "no champion (too few labelled, embedded images)"
        else:
            weights = model.champion_tags.get("weights", "?")
            state = f"champion v{model.champion_version} (weights={weights})"
        click.echo(f"  {c.id} {c.name!r} [{c.focus.key if c.focus else '-'}]: {state}")


@main.command("dagster-ui")
@HOME_OPTION
@click.option("--port", default=3000, show_default=True)
def dagster_ui(home: Path | None, port: int) -> None:
    """Open the Dagster UI (dagster dev) on this home's instance."""
    settings = _settings(home)
    require_home(settings)
    _export(settings)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").touch()
    args = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "ml_platform.defs.definitions",
        "-p",
        str(port),
    ]
    os.execv(sys.executable, args)


@main.command("mlflow-ui")
@HOME_OPTION
@click.option("--port", default=5000, show_default=True)
def mlflow_ui(home: Path | None, port: int) -> None:
    """Open the MLflow UI on this home's tracking store."""
    settings = _settings(home)
    require_home(settings)
    _export(settings)
    settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.tracking_uri,
        "--default-artifact-root", settings.mlflow_artifact_root, "--port", str(port),
    ]  # fmt: skip
    os.execv(sys.executable, args)


@main.command()
@HOME_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(home: Path | None, host: str, port: int) -> None:
    """Serve classify, embed, detect, zero-shot and clusters over HTTP (FastAPI, /docs)."""
    from ml_platform.serving.app import run_server
    from ml_platform.serving.options import options_from_settings

    settings = _settings(home)
    require_home(settings)
    _export(settings)
    run_server(settings, host=host, port=port, options=options_from_settings(settings))


def _register_subcommands() -> None:
    from ml_platform.cli.models import models
    from ml_platform.cli.workers import celery_worker

    main.add_command(models)
    from ml_platform.cli.finetune import finetune
    from ml_platform.cli.labels import labels

    main.add_command(finetune)
    main.add_command(labels)
    from ml_platform.cli.embed import embed

    main.add_command(embed)
    main.add_command(celery_worker)
    from ml_platform.cli.curation import audit, review_queue, suggest

    for command in (suggest, audit, review_queue):
        main.add_command(command)


_register_subcommands()
