"""`ml-platform suggest | audit | review-queue COLLECTION_ID`: what to look at next.

The same service functions as `GET /v1/collections/{id}/suggestions | label-issues |
review-queue`; the output is for a person to act on in crawlr, nothing is applied.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

HOME = click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")


def _ask(home: Path | None, collection_id: int, ask: Callable[[Any, Any], Any]) -> Any:
    from ml_platform.cli import _registered_home
    from ml_platform.defs.resources.mlflow import MlflowResource
    from ml_platform.services.curation_scores import CurationError, champion_view
    from ml_platform.store.layout import Layout

    settings = _registered_home(home)
    layout = Layout.for_settings(settings)
    client = MlflowResource(home=str(settings.resolved_home)).client()
    try:
        view = champion_view(layout, client, collection_id, settings.mlflow_artifact_root)
        return ask(layout, view)
    except CurationError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo_json(answer: Any, items: str, fields: tuple[str, ...]) -> None:
    rows = [
        {f: (v.value if hasattr(v, "value") else v) for f, v in dataclasses.asdict(i).items()
         if f in fields}
        for i in getattr(answer, items)
    ]  # fmt: skip
    payload = {"collection_id": answer.collection_id, "model_version": answer.model_version,
               items: rows}  # fmt: skip
    click.echo(json.dumps(payload, indent=2))


@click.command()
@click.argument("collection_id", type=click.IntRange(min=0))
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--min-probability", type=click.FloatRange(0.0, 1.0), default=0.0)
@JSON
@HOME
def suggest(
    collection_id: int, limit: int, min_probability: float, as_json: bool, home: Path | None
) -> None:
    """Images neither in COLLECTION_ID nor rejected, most probable first (copies collapsed)."""
    from ml_platform.services.curation import suggestions

    answer = _ask(home, collection_id, lambda lay, v: suggestions(lay, v, limit, min_probability))
    if as_json:
        return _echo_json(answer, "suggestions", ("image_id", "probability"))
    click.echo(f"collection {collection_id}, champion v{answer.model_version}: "
               f"{len(answer.suggestions)} suggestions")  # fmt: skip
    for s in answer.suggestions:
        copies = f"  (+{len(s.duplicates)} near-duplicates)" if s.duplicates else ""
        click.echo(f"  image {s.image_id}: p={s.probability:.3f}{copies}")


@click.command()
@click.argument("collection_id", type=click.IntRange(min=0))
@JSON
@HOME
def audit(collection_id: int, as_json: bool, home: Path | None) -> None:
    """Members that probably do not belong and rejections that probably do."""
    from ml_platform.services.curation import label_issues

    answer = _ask(home, collection_id, label_issues)
    if as_json:
        return _echo_json(answer, "issues", ("image_id", "kind", "score", "tier"))
    click.echo(f"collection {collection_id}, champion v{answer.model_version}: "
               f"{len(answer.issues)} possible label issues (check them in crawlr)")  # fmt: skip
    for i in answer.issues:
        click.echo(f"  image {i.image_id}: {i.kind.value}, {i.tier.value} (score {i.score:.2f})")


@click.command("review-queue")
@click.argument("collection_id", type=click.IntRange(min=0))
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@JSON
@HOME
def review_queue(collection_id: int, limit: int, as_json: bool, home: Path | None) -> None:
    """The images whose labels would teach COLLECTION_ID's classifier most."""
    from ml_platform.services.curation import review

    answer = _ask(home, collection_id, lambda lay, v: review(lay, v, limit))
    if as_json:
        return _echo_json(answer, "queue", ("image_id", "reason", "score"))
    click.echo(f"collection {collection_id}, champion v{answer.model_version}: label these next")
    for e in answer.queue:
        click.echo(f"  image {e.image_id}: {e.reason.value} (score {e.score:.2f})")
