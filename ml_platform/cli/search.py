"""`ml-platform search`: the catalog's images nearest to a text, an image file, an image id or
a collection (the same service and choices as `POST /v1/search`)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ml_platform.domain import Focus
    from ml_platform.services.search import Encoded, Encoders
    from ml_platform.settings import Settings


@click.command()
@click.option("--text", default=None, help="What to look for (a focus with a CLIP text tower).")
@click.option("--image", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="An example image file.")  # fmt: skip
@click.option("--image-id", type=click.IntRange(min=0), default=None, help="A stored image.")
@click.option("--collection", type=click.IntRange(min=0), default=None,
              help="A collection: its champion's direction, else its centroid.")  # fmt: skip
@click.option("--focus", default=None, help="derivative__embedding_type (default: the "
              "collection's, else ML_PLATFORM_CLUSTER_FOCUS).")  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--pet", type=click.IntRange(min=0), default=None, help="Only this pet's images.")
@click.option("--in-collection", type=click.IntRange(min=0), default=None,
              help="Only this collection's members.")  # fmt: skip
@click.option("--exclude-collection", type=click.IntRange(min=0), default=None,
              help="Leave out this collection's members and rejected images.")  # fmt: skip
@click.option("--batch", default=None, help="Only this ingestion batch.")
@click.option("--created-after", type=click.DateTime(), default=None, help="UTC.")
@click.option("--created-before", type=click.DateTime(), default=None, help="UTC.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")
def search(
    text: str | None, image: Path | None, image_id: int | None, collection: int | None,
    focus: str | None, limit: int, pet: int | None, in_collection: int | None,
    exclude_collection: int | None, batch: str | None, created_after: datetime | None,
    created_before: datetime | None, as_json: bool, home: Path | None,
) -> None:  # fmt: skip
    """Search the indexed images of one focus; best first, with cosine scores."""
    from ml_platform.cli import _settings
    from ml_platform.cli.weights import home_rule
    from ml_platform.services import search as service
    from ml_platform.store.layout import Layout
    from ml_platform.store.search_cache import IndexCache

    settings = home_rule(_settings(home))
    layout = Layout.for_settings(settings)
    query = service.Query(text, image.read_bytes() if image else None, image_id, collection)
    filters = service.Filters(pet, in_collection, exclude_collection, batch,
                              _utc(created_after), _utc(created_before))  # fmt: skip
    try:
        result = service.search(
            layout, IndexCache(layout), _encoders(settings), query,
            focus=service.parse_focus(focus) if focus else None,
            default_focus=service.parse_focus(settings.cluster_focus), limit=limit,
            filters=filters,
        )  # fmt: skip
    except service.SearchError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(result, as_json)


def _utc(when: datetime | None) -> datetime | None:
    from datetime import UTC

    return None if when is None else when.replace(tzinfo=UTC)


def _print(result: object, as_json: bool) -> None:
    from ml_platform.services.search import SearchResult

    assert isinstance(result, SearchResult)
    if as_json:
        hits = [{"image_id": h.image_id, "score": h.score} for h in result.hits]
        payload = {"focus": result.focus.key, "query": result.query, "results": hits,
                   "timings_ms": result.timings_ms}  # fmt: skip
        click.echo(json.dumps(payload, default=str, indent=1))
        return
    click.echo(f"focus {result.focus.key}; query {result.query}")
    for rank, hit in enumerate(result.hits, 1):
        click.echo(f"{rank:4d}. image {hit.image_id}  score {hit.score:.4f}")
    if not result.hits:
        click.echo("no indexed image passes the filters")


def _encoders(settings: Settings) -> Encoders:
    from ml_platform.services.search import Encoders

    return Encoders(
        text=lambda focus, value: _text(settings, focus, value),
        image=lambda focus, data: _image(settings, focus, data),
        champion=lambda cid: _champion(settings, cid),
    )


def _text(settings: Settings, focus: Focus, value: str) -> Encoded:
    from ml_platform.services.search import Encoded, SearchError
    from ml_platform.services.search_encoders import text_features, text_tower_of
    from ml_platform.vision.zero_shot import ZeroShotKind, ZeroShotUnavailableError, load_zero_shot

    kind = ZeroShotKind(text_tower_of(focus))
    try:
        model = load_zero_shot(kind, settings.clip_model,
                               allow_random_weights=settings.allow_random_weights)  # fmt: skip
    except ZeroShotUnavailableError as exc:
        raise SearchError(str(exc), 503) from exc
    vector = text_features(model.model, model.tokenizer, value, model.device)
    return Encoded(vector, {"text_model": model.model_id, "weights": model.weights.value})


def _image(settings: Settings, focus: Focus, data: bytes) -> Encoded:
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ml_platform.domain import DerivativeType
    from ml_platform.services.search import Encoded, SearchError
    from ml_platform.vision.crops import crop_for
    from ml_platform.vision.detectors import get_detector
    from ml_platform.vision.embedders import build_embedder
    from ml_platform.vision.embedders.options import embedder_options

    try:
        picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise SearchError(f"the example is not an image Pillow can read: {exc}", 400) from exc
    embedder = build_embedder(focus.embedding_type, embedder_options(settings))
    if focus.derivative_type is not DerivativeType.WHOLE_IMAGE:
        detector = get_detector(yunet_model=settings.yunet_model,
                                person_onnx=settings.person_detector_onnx)  # fmt: skip
        crop = crop_for(picture, focus.derivative_type, detector.detect(picture))
        if crop is None:
            raise SearchError(f"no {focus.derivative_type.value} found in the example image")
        picture = crop
    vector = embedder.embed([picture])
    return Encoded(vector, {"embedder": embedder.model_id, "weights": embedder.weights.value})


def _champion(settings: Settings, collection_id: int) -> tuple[Focus, Encoded | None] | None:
    from mlflow import MlflowClient

    from ml_platform.domain import DerivativeType, Focus
    from ml_platform.model_registry.collection.lookup import get_champion, load_classifier
    from ml_platform.model_registry.collection.naming import VersionTag
    from ml_platform.services.search import Encoded
    from ml_platform.services.search_encoders import linear_direction

    uri = settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    info = get_champion(client, collection_id)
    if info is None:
        return None
    focus = Focus(DerivativeType(info.tags[VersionTag.DERIVATIVE_TYPE.value]),
                  info.tags[VersionTag.EMBEDDING_TYPE.value])  # fmt: skip
    model = load_classifier(client, collection_id, artifact_root=settings.mlflow_artifact_root)
    direction = linear_direction(model.estimator)
    details = {"direction": "champion", "model_version": info.version,
               "weights": info.tags.get(VersionTag.WEIGHTS.value)}  # fmt: skip
    return focus, None if direction is None else Encoded(direction, details)
