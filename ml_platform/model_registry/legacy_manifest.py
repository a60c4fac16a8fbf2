"""Read a legacy `best_models.json` and locate its model files safely.

Two formats:
- old: `{"42": "collection_42_classifier_....pkl"}`: no focus was recorded; these models
  were trained on CLIP ViT-B/32 whole-image embeddings, so that focus (512-d) is assumed
  and a warning is logged for each entry;
- new: `{"42": {"model_file": ..., "derivative_type": ..., "embedding_type": ...,
  "dimensionality": 512}}`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_platform.config_files import ConfigFileError, read_json
from ml_platform.domain import BuiltinEmbeddingType, DerivativeType, Focus

log = logging.getLogger(__name__)

MANIFEST_NAME = "best_models.json"
OLD_FORMAT_FOCUS = Focus(DerivativeType.WHOLE_IMAGE, BuiltinEmbeddingType.CLIP_VIT_B_32.value)
OLD_FORMAT_DIMENSIONALITY = 512
MAX_ID_DIGITS = 18
NEW_FORMAT_KEYS = frozenset({"model_file", "derivative_type", "embedding_type", "dimensionality"})


class LegacyEntryError(ValueError):
    """One manifest entry cannot be imported; the message says why."""


@dataclass(frozen=True)
class LegacyEntry:
    """One parsed manifest entry."""

    collection_id: int
    model_file: str
    focus: Focus
    dimensionality: int


def read_manifest(directory: Path) -> dict[str, Any]:
    """The raw `collection id -> entry` mapping of `directory/best_models.json`."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; point the import at a legacy model directory")
    manifest = read_json(path, "legacy manifest")
    if not isinstance(manifest, dict):
        raise ConfigFileError(f"{path} must hold a JSON object of collection id -> model")
    return manifest


def parse_entry(key: str, raw: object) -> LegacyEntry:
    """A manifest entry in either format, or LegacyEntryError saying what is wrong."""
    if not (key.isascii() and key.isdigit() and len(key) <= MAX_ID_DIGITS):
        shown = key if len(key) <= 40 else f"{key[:40]}... ({len(key)} characters)"
        raise LegacyEntryError(
            f"key {shown!r} is not a collection id (at most {MAX_ID_DIGITS} ASCII digits)"
        )
    if isinstance(raw, str):
        log.warning(
            "legacy entry %s uses the old format: assuming focus %s and dimensionality %d",
            key,
            OLD_FORMAT_FOCUS.key,
            OLD_FORMAT_DIMENSIONALITY,
        )
        return LegacyEntry(int(key), raw, OLD_FORMAT_FOCUS, OLD_FORMAT_DIMENSIONALITY)
    if not isinstance(raw, dict):
        raise LegacyEntryError(f"entry must be a file name or an object, got {type(raw).__name__}")
    return _parse_new_entry(int(key), raw)


def resolve_model_file(directory: Path, model_file: str) -> Path:
    """`directory/model_file`, refusing anything that would leave `directory`."""
    root = directory.resolve()
    if not isinstance(model_file, str) or any(ord(c) < 0x20 for c in model_file):
        raise LegacyEntryError(
            f"model_file {model_file!r} must be a file name without NUL or control characters"
        )
    if not model_file or Path(model_file).is_absolute():
        raise LegacyEntryError(f"model_file {model_file!r} must be a relative file name")
    path = (root / model_file).resolve()
    if not path.is_relative_to(root):
        raise LegacyEntryError(f"model_file {model_file!r} escapes the directory {root}")
    if not path.is_file():
        raise LegacyEntryError(f"model_file {model_file!r} not found in {root}")
    return path


def model_file_of(raw: object) -> str | None:
    """The model file an entry names, whatever else is wrong with it (for reports)."""
    if isinstance(raw, str):
        return raw
    return str(raw.get("model_file")) if isinstance(raw, dict) and "model_file" in raw else None


def _parse_new_entry(collection_id: int, raw: dict[str, Any]) -> LegacyEntry:
    missing = NEW_FORMAT_KEYS - set(raw)
    if missing:
        raise LegacyEntryError(f"entry lacks {sorted(missing)}")
    try:
        derivative = DerivativeType(raw["derivative_type"])
    except ValueError as error:
        known = [d.value for d in DerivativeType]
        raise LegacyEntryError(
            f"unknown derivative_type {raw['derivative_type']!r}; known: {known}"
        ) from error
    dimensionality = raw["dimensionality"]
    if type(dimensionality) is not int or dimensionality <= 0:
        raise LegacyEntryError(f"dimensionality must be a positive integer, got {dimensionality!r}")
    embedding_type = raw["embedding_type"]
    if not isinstance(embedding_type, str) or not embedding_type:
        raise LegacyEntryError(f"embedding_type must be a non-empty name, got {embedding_type!r}")
    focus = Focus(derivative, embedding_type)
    return LegacyEntry(collection_id, str(raw["model_file"]), focus, dimensionality)
