"""`ml-platform embed PATHS... --embedding-type T --out FILE.parquet`: embed files for users."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ml_platform.domain import DerivativeType
from ml_platform.vision.embedders.backends import CHOICES

if TYPE_CHECKING:
    from ml_platform.services.embed_files import EmbedSummary
    from ml_platform.settings import Settings
    from ml_platform.vision.detectors import Detector
    from ml_platform.vision.embedders import Embedder


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--embedding-type", "embedding_type", required=True, help="e.g. embed_clip_vit_b_32")
@click.option(
    "--target",
    type=click.Choice([d.value for d in DerivativeType]),
    default=DerivativeType.WHOLE_IMAGE.value,
    show_default=True,
    help="What of each image to embed.",
)
@click.option(
    "--backend",
    type=click.Choice(list(CHOICES)),
    default=None,
    help="Inference backend (default: the setting ML_PLATFORM_EMBED_BACKEND, auto).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Parquet file.")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Platform home.")
@click.option("--batch-size", type=int, default=None, help="Images per forward pass.")
def embed(
    paths: tuple[Path, ...],
    embedding_type: str,
    target: str,
    backend: str | None,
    out: Path,
    home: Path | None,
    batch_size: int | None,
) -> None:
    """Embed image files and folders (searched recursively) into one Parquet file."""
    from ml_platform.cli.weights import home_rule
    from ml_platform.services.embed_files import find_images

    settings = home_rule(_settings(home, backend, batch_size))
    files = find_images(list(paths))
    if not files:
        raise click.ClickException(f"no images found under {', '.join(map(str, paths))}")
    derivative = DerivativeType(target)
    embedder, detector = _load(settings, embedding_type, derivative)
    click.echo(
        f"{embedding_type}: {embedder.model_id}@{embedder.revision} "
        f"(weights={embedder.weights.value}, dim={embedder.dim}); {len(files)} images"
    )
    started = time.perf_counter()
    summary = _run(files, embedder, derivative, out, detector, settings.embed_loader_threads)
    seconds = time.perf_counter() - started
    if summary.no_derivative or summary.failed:
        click.echo(f"{summary.no_derivative} without a {target}, {summary.failed} failed")
    click.echo(f"wrote {out}")
    rate = summary.ok / seconds if seconds > 0 else 0.0
    click.echo(f"embedded {summary.ok} images in {seconds:.1f} s ({rate:.1f} img/s)")


def _settings(home: Path | None, backend: str | None, batch_size: int | None) -> Settings:
    from ml_platform.settings import Settings

    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if backend is not None:
        overrides["embed_backend"] = backend
        overrides["embed_backends"] = ""
    if batch_size is not None:
        overrides["embed_batch_size"] = batch_size
    return Settings(**overrides)  # type: ignore[arg-type]


def _load(
    settings: Settings, embedding_type: str, target: DerivativeType
) -> tuple[Embedder, Detector | None]:
    """The embedder (and the detector for crops), loaded before the clock starts."""
    from ml_platform.vision.detectors import get_detector
    from ml_platform.vision.embedders import EmbedderUnavailableError, build_embedder
    from ml_platform.vision.embedders.options import embedder_options

    try:
        embedder = build_embedder(embedding_type, embedder_options(settings))
    except (KeyError, EmbedderUnavailableError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if target is DerivativeType.WHOLE_IMAGE:
        return embedder, None
    detector = get_detector(
        yunet_model=settings.yunet_model, person_onnx=settings.person_detector_onnx
    )
    return embedder, detector


def _run(
    files: list[Path],
    embedder: Embedder,
    target: DerivativeType,
    out: Path,
    detector: Detector | None,
    loader_threads: int,
) -> EmbedSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ml_platform.services.embed_files import embed_files

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*Progress.get_default_columns()[:1], *columns, transient=True) as progress:
        task = progress.add_task("embedding", total=len(files))
        return embed_files(
            files,
            embedder,
            target,
            out,
            detector=detector,
            on_batch=lambda n: progress.advance(task, n),
            loader_threads=loader_threads or None,
        )
