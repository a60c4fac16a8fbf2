"""Where exported and quantised ONNX models live: ``<home>/models/onnx/<model>/<revision>/``.

One directory per (model id, revision, architecture fingerprint); in it ``<backend>.onnx``
and ``<backend>.json``, the record of the drift check that accepted or refused it. A refused
backend keeps its record (not its model), so later processes fall back at once, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ml_platform.vision.embedders.backends import Backend

SLUG_CHARS = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportRecord:
    """The outcome of making one backend: drift against fp32, speed on the sample, why."""

    backend: str
    accepted: bool
    mean_cosine: float
    min_cosine: float
    images_per_second: float
    calibration: str
    int8_mode: str | None = None
    reason: str = ""
    recipe: str = ""  # INT8: the static recipe's label (a static model is stale when changed)
    cpu: str = ""  # INT8: the CPU class it was checked on (int8_cpu; stale on another class)

    def is_current(self, recipe: str, cpu: str) -> bool:
        """False for an INT8 record made on another CPU class (records older than the CPU
        field count as made here) or, when static, with another recipe."""
        if self.backend != Backend.ONNX_INT8.value:
            return True
        if self.cpu and self.cpu != cpu:
            return False
        return self.int8_mode != "static" or self.recipe == recipe

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExportRecord:
        """The record; keys a newer version added are ignored (older ones have defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


@dataclass(frozen=True)
class CacheEntry:
    """The files of one backend of one model in the cache."""

    directory: Path
    backend: Backend

    @property
    def model_path(self) -> Path:
        return self.directory / f"{self.backend.value}.onnx"

    @property
    def record_path(self) -> Path:
        return self.directory / f"{self.backend.value}.json"

    def read_record(self) -> ExportRecord | None:
        """The stored record; None when absent, or accepted but its model file is gone."""
        if not self.record_path.is_file():
            return None
        record = ExportRecord.from_json(self.record_path.read_text())
        if record.accepted and not self.model_path.is_file():
            return None
        return record

    def write_record(self, record: ExportRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.record_path.with_suffix(f".json.{os.getpid()}.tmp")
        temporary.write_text(record.to_json())
        temporary.replace(self.record_path)

    def temporary_model(self, label: str = "") -> Path:
        """A path beside the model to write to before an atomic rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        suffix = f".{label}" if label else ""
        return self.directory / f"{self.backend.value}{suffix}.{os.getpid()}.tmp.onnx"


def slug(text: str) -> str:
    """A filename-safe, collision-free rendering of ``text``."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("_", text).strip("_")[-SLUG_CHARS:]
    return f"{readable}-{digest}" if readable else digest


def cache_entry(
    cache_dir: Path, model_id: str, revision: str, fingerprint: str, backend: Backend
) -> CacheEntry:
    directory = cache_dir / slug(model_id) / slug(f"{revision}-{fingerprint}")
    return CacheEntry(directory, backend)


def fingerprint(text: str) -> str:
    """A short hash of an architecture description (a transformers config as JSON)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
