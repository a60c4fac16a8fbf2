"""The datasets file as `labels suggest` and `finetune` read it: every problem one sentence
naming the file (exit 4), checked before any work."""

from __future__ import annotations

from pathlib import Path

from ml_platform.cli.errors import InputFileError
from ml_platform.services.datasets import (
    DatasetSpec,
    datasets_file,
    read_dataset_specs,
    require_spec,
)
from ml_platform.settings import Settings
from ml_platform.store.collections_file import has_collections, read_collections
from ml_platform.store.layout import Layout


def dataset_specs(settings: Settings) -> dict[str, DatasetSpec]:
    """Every declared dataset; a missing or malformed file is an error naming it."""
    try:  # config_files names the file, and the line and column where the parser knows them
        return read_dataset_specs(datasets_file(settings))
    except (FileNotFoundError, ValueError) as exc:
        raise InputFileError(str(exc)) from exc


def checked_dataset(settings: Settings, name: str) -> tuple[dict[str, DatasetSpec], DatasetSpec]:
    """All specs and dataset `name`, whose classes must name collections crawlr has."""
    specs = dataset_specs(settings)
    try:
        spec = require_spec(specs, name)
    except KeyError as exc:
        raise InputFileError(f"{exc.args[0]} (in {datasets_file(settings)})") from exc
    require_known_collections(settings, spec, datasets_file(settings))
    return specs, spec


def require_known_collections(settings: Settings, spec: DatasetSpec, path: Path) -> None:
    """The classes' collections exist in the home's last read of crawlr's collections."""
    layout = Layout.for_settings(settings)
    if not has_collections(layout):
        raise InputFileError(
            f"{settings.resolved_home} has not read crawlr's collections yet, so dataset "
            f"{spec.name!r} ({path}) cannot be checked; run `ml-platform run` (or `demo`) first"
        )
    known = sorted(c.id for c in read_collections(layout))
    missing = {label: cid for label, cid in spec.classes if cid not in known}
    if missing:
        raise InputFileError(
            f"dataset {spec.name!r} in {path} names collections crawlr does not have: "
            f"{', '.join(f'{label}: {cid}' for label, cid in missing.items())}; "
            f"crawlr's collection ids are {known}"
        )
