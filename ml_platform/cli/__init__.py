"""The `ml-platform` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ml_platform.cli.errors import (
    VERBOSE,
    MissingHomeError,
    PlatformGroup,
    RunFailedError,
    UnreachableError,
    require_home,
)
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


def _registered_home(home: Path | None) -> Settings:
    """Settings for a home whose registry must exist, exported to child processes."""
    settings = _settings(home)
    require_home(settings)
    _export(settings)
    return settings


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
    from ml_platform.cli.progress import configure_logging

    ctx.meta[VERBOSE] = verbose
    configure_logging(verbose)


@main.command()
@HOME_OPTION
def demo(home: Path | None) -> None:
    """Build the built-in sample crawlr snapshot under home and run everything on it, offline."""
    from ml_platform.demo.offline_home import mark_made_offline
    from ml_platform.demo.sample import DEMO_DATASET, build_sample_snapshot, write_demo_datasets
    from ml_platform.services.datasets import datasets_file
    from ml_platform.vision.hub import hub_offline

    settings = _settings(home)
    settings = settings.model_copy(update={"crawlr": str(settings.sample_snapshot_dir)})
    _export(settings)
    created = build_sample_snapshot(settings.sample_snapshot_dir)
    state = "new" if created else "kept"
    click.echo(f"sample crawlr snapshot: {settings.sample_snapshot_dir} ({state})")
    if settings.datasets_file is None:  # a configured datasets file is the user's own
        path = datasets_file(settings)
        state = "new" if write_demo_datasets(path) else "kept"
        click.echo(f"datasets file: {path} ({state}; the demo's dataset is {DEMO_DATASET!r})")
    allow_random = None
    if hub_offline():
        os.environ["HF_HUB_OFFLINE"] = "1"  # local cache only: no retries against the hub
        allow_random = True
        mark_made_offline(settings.resolved_home)  # `serve` and the rest follow the same rule
        click.echo(OFFLINE_NOTICE)
    from ml_platform.cli.progress import job_progress
    from ml_platform.defs.runner import (
        run_once,
    )  # after HF_HUB_OFFLINE: the hub client reads it once

    with job_progress("demo") as on_job:
        summary = run_once(
            settings, allow_random_weights=allow_random, on_job=on_job, finetune=False
        )
    _print_summary(summary, settings)
    from ml_platform.demo.sample import DEMO_DATASET

    home = settings.resolved_home
    click.echo(
        f"try the dataset {DEMO_DATASET!r} (its version is made; fine-tuning is yours to start):\n"
        f"  ml-platform labels suggest {DEMO_DATASET} --home {home}\n"
        f"  ml-platform finetune --dataset {DEMO_DATASET} --epochs 2 --home {home}"
    )
    click.echo(f"serve the champions (HTTP, /docs):  ml-platform serve --home {home}")


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
    click.echo(
        f"serve the champions (HTTP, /docs):  ml-platform serve --home {settings.resolved_home}"
    )


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
    data = {**report.as_json(), "orphaned_models": _orphaned_models(settings)}
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    _print_status(data)
    for line in data["orphaned_models"]:
        click.echo(f"orphaned model: {line} (remove with `ml-platform models prune-orphans`)")


def _orphaned_models(settings: Settings) -> list[str]:
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.services.leftovers import orphaned_models

    client = MlflowResource(home=str(settings.resolved_home)).client()
    return [f"{o.path}: {o.reason}" for o in orphaned_models(client, settings.mlflow_artifact_root)]


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
        raise MissingHomeError(
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
    from ml_platform.cli.progress import seconds_since_start
    from ml_platform.defs.runner import RunSummary

    assert isinstance(summary, RunSummary)
    _fail_before_summary(summary, settings)
    click.echo(f"home: {summary.home}")
    click.echo(f"crawlr: {redact_url(summary.crawlr)}")
    click.echo(f"new ingestion batches: {len(summary.new_batches)} {summary.new_batches}")
    click.echo(f"materialized ({len(summary.materialized)}):")
    for line in summary.materialized:
        click.echo(f"  - {line}")
    for line in summary.labels:
        click.echo(f"labels: {line}")
    for line in summary.retrained:
        click.echo(f"trained: {line}")
    for line in summary.skipped:
        click.echo(f"skipped: {line}")
    for line in summary.cleared:
        click.echo(f"marked failed: {line}")
    _print_collections(settings)
    click.echo(
        f"wall time: {seconds_since_start():.1f} s (start-up included; the runs "
        f"{summary.seconds:.1f} s)"
    )
    home = settings.resolved_home
    click.echo(f"Dagster UI:  ml-platform dagster-ui --home {home}")
    click.echo(f"MLflow UI:   ml-platform mlflow-ui --home {home}")


def _fail_before_summary(summary: object, settings: Settings) -> None:
    """A failed pass says so first, in one sentence, and prints no summary (exit 5 when
    crawlr did not answer, 1 when a run failed)."""
    from ml_platform.defs.runner import RunSummary

    assert isinstance(summary, RunSummary)
    if not summary.failed_runs:
        return
    unread = [line for line in summary.failed_runs if line.startswith("planning: crawlr not read")]
    if unread:
        raise UnreachableError(
            f"crawlr at {redact_url(summary.crawlr)} (ML_PLATFORM_CRAWLR or --crawlr) could not "
            f"be read: {unread[0].removeprefix('planning: crawlr not read ')}"
        )
    more = f" (and {len(summary.failed_runs) - 1} more)" if len(summary.failed_runs) > 1 else ""
    raise RunFailedError(
        f"a run failed: {summary.failed_runs[0]}{more}; see it in "
        f"`ml-platform dagster-ui --home {settings.resolved_home}`"
    )


def _print_collections(settings: Settings) -> None:
    """Each collection's state: its champion (with the weights it rests on) or why none."""
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.model_registry.collection.lookup import list_models
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
    settings = _registered_home(home)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").touch()
    for line in automation_lines():
        click.echo(line)
    args = [
        sys.executable,
        "-W",  # `dagster dev` still runs webserver + daemon; `dg dev` is another package
        "ignore:Function `dev_command` is superseded:FutureWarning",
        "-m",
        "dagster",
        "dev",
        "-m",
        "ml_platform.defs.definitions",
        "-p",
        str(port),
    ]
    os.execv(sys.executable, args)


def automation_lines() -> list[str]:
    """What the daemon `dagster-ui` starts will run, read from the Definitions."""
    from ml_platform.defs.definitions import defs

    lines = ["the Dagster daemon starts with these sensors and schedules (switch any off on the "
             "UI's Automation page):"]  # fmt: skip
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        status = getattr(sensor.default_status, "value", sensor.default_status)
        every = f"every {sensor.minimum_interval_seconds} s"
        lines.append(f"  sensor   {sensor.name} ({every}): {str(status).lower()}")
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        status = getattr(schedule.default_status, "value", schedule.default_status)
        cron = getattr(schedule, "cron_schedule", "?")
        lines.append(f"  schedule {schedule.name} ({cron}): {str(status).lower()}")
    return lines


@main.command("mlflow-ui")
@HOME_OPTION
@click.option("--port", default=5000, show_default=True)
def mlflow_ui(home: Path | None, port: int) -> None:
    """Open the MLflow UI on this home's tracking store."""
    settings = _registered_home(home)
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
    from ml_platform.cli.weights import home_rule, start_up_line
    from ml_platform.serving.app import run_server
    from ml_platform.serving.options import options_from_settings

    settings = _settings(home)
    require_home(settings, registry=False)  # embed, detect, zero-shot need no champion
    settings = home_rule(settings, say=False)  # the start-up line says it
    _export(settings)
    click.echo(start_up_line(settings, host, port), err=True)
    run_server(settings, host=host, port=port, options=options_from_settings(settings))


def _register_subcommands() -> None:
    from ml_platform.cli.registry_commands import models
    from ml_platform.cli.workers import celery_worker

    main.add_command(models)
    from ml_platform.cli.finetune import finetune
    from ml_platform.cli.labels import labels

    main.add_command(finetune)
    main.add_command(labels)
    from ml_platform.cli.embed import embed

    main.add_command(embed)
    from ml_platform.cli.search import search

    main.add_command(search)
    main.add_command(celery_worker)
    from ml_platform.cli.curation import audit, review_queue, suggest
    from ml_platform.cli.pipeline_metrics import pipeline_metrics

    main.add_command(pipeline_metrics)

    for command in (suggest, audit, review_queue):
        main.add_command(command)


_register_subcommands()
