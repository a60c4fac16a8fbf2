"""Who made an embedding: one frozen value for Parquet columns, MLflow tags and serving's keys.

An `EmbedderIdentity` is the embedding type, the model id, the checkpoint's revision, the
backend it ran on and whether its weights were pretrained. It is written as four strings
under the same names in a Parquet embeddings table (`to_columns`) and on a classifier's model
version (`to_tags`): `embedding_type`, `embedder_id`, `embedder_revision`, `weights`. The
backend rides in the revision as a suffix (`<checkpoint>+onnx-int8`, `backends.
suffixed_revision`) when it is not the type's native one, so what was written before this value
existed reads back as the same identity (`from_tags`, `from_columns`): the same four names, a
backend suffix before other `+` suffixes (`sha256:..+onnx-int8+align-five-point`, as face-aligned
types wrote it), tags a version does not carry (`unknown`; weights: pretrained), null columns.

`EmbedderKey` is what serving asks its per-app embedder cache for: a type, optionally pinned
to a backend, optionally the seeded random-weight variant; its string form
(`<type>[@random][:<backend>]`) is the cache's key and is parsed only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from ml_platform.domain import WeightsStatus
from ml_platform.vision.embedders.backends import Backend, split_revision, suffixed_revision
from ml_platform.vision.embedders.base import Embedder

UNKNOWN = "unknown"  # a field an old record does not carry (legacy imports)
RANDOM_SUFFIX = "@random"
BACKEND_SEPARATOR = ":"


class IdentityField(StrEnum):
    """The names an identity is written under: Parquet columns and MLflow tags alike."""

    EMBEDDING_TYPE = "embedding_type"
    EMBEDDER_ID = "embedder_id"
    EMBEDDER_REVISION = "embedder_revision"
    WEIGHTS = "weights"


@dataclass(frozen=True)
class EmbedderIdentity:
    """One embedder: type, model id, checkpoint revision, backend (None: the type's native
    runtime, torch for the built-ins, onnx for custom types) and weights."""

    embedding_type: str
    model_id: str
    checkpoint: str
    backend: Backend | None = None
    weights: WeightsStatus = WeightsStatus.PRETRAINED

    @property
    def revision(self) -> str:
        """The stored revision: the checkpoint's, with `+<backend>` when not native."""
        return suffixed_revision(self.checkpoint, self.backend)

    def on(self, backend: Backend, native: Backend) -> EmbedderIdentity:
        """The same checkpoint run on `backend` (`native`: the type's own runtime)."""
        return replace(self, backend=None if backend is native else backend)

    @classmethod
    def parse(
        cls, embedding_type: str, model_id: str, revision: str, weights: str
    ) -> EmbedderIdentity:
        """An identity from its four stored strings; a ValueError for unknown weights."""
        parts = split_revision(revision)
        if weights not in {w.value for w in WeightsStatus}:
            known = [w.value for w in WeightsStatus]
            raise ValueError(f"weights {weights!r} of {embedding_type} is not one of {known}")
        return cls(embedding_type, model_id, parts.checkpoint, parts.backend,
                   WeightsStatus(weights))  # fmt: skip

    @classmethod
    def of(cls, embedder: Embedder) -> EmbedderIdentity:
        """The identity of a loaded embedder (wrappers included: read from what it says)."""
        return cls.parse(embedder.name, embedder.model_id, embedder.revision,
                         embedder.weights.value)  # fmt: skip

    def to_tags(self) -> dict[str, str]:
        """MLflow tags of a model trained on this embedder's vectors."""
        return {
            IdentityField.EMBEDDING_TYPE.value: self.embedding_type,
            IdentityField.EMBEDDER_ID.value: self.model_id,
            IdentityField.EMBEDDER_REVISION.value: self.revision,
            IdentityField.WEIGHTS.value: self.weights.value,
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> EmbedderIdentity:
        """Read back `to_tags` (and the tags of versions registered before it: a missing id
        or revision is `unknown`, missing weights are pretrained, as legacy imports say)."""
        return cls.parse(
            tags.get(IdentityField.EMBEDDING_TYPE.value, UNKNOWN),
            tags.get(IdentityField.EMBEDDER_ID.value, UNKNOWN),
            tags.get(IdentityField.EMBEDDER_REVISION.value, UNKNOWN),
            tags.get(IdentityField.WEIGHTS.value, WeightsStatus.PRETRAINED.value),
        )

    def to_columns(self, rows: int) -> dict[str, list[str]]:
        """The identity columns of an embeddings table of `rows` rows."""
        return {name: [value] * rows for name, value in self.to_tags().items()}

    @classmethod
    def from_columns(cls, row: Mapping[str, object]) -> EmbedderIdentity:
        """The identity of one table row (the columns carry the tags' names and grammar; a
        null or absent column reads as `from_tags` reads a missing tag)."""
        present = {f.value: row.get(f.value) for f in IdentityField}
        return cls.from_tags({k: str(v) for k, v in present.items() if v is not None})


@dataclass(frozen=True)
class EmbedderKey:
    """What serving's embedder cache holds: a type, its seeded random-weight variant or not,
    pinned to a backend or as configured (None)."""

    embedding_type: str
    random: bool = False
    backend: Backend | None = None

    def __str__(self) -> str:
        suffix = RANDOM_SUFFIX if self.random else ""
        pinned = f"{BACKEND_SEPARATOR}{self.backend.value}" if self.backend else ""
        return f"{self.embedding_type}{suffix}{pinned}"

    def on(self, backend: Backend | None) -> EmbedderKey:
        """The same key pinned to `backend` (None: as configured)."""
        return replace(self, backend=backend)

    @classmethod
    def parse(cls, key: str) -> EmbedderKey:
        """Inverse of `str`: an unknown `:<suffix>` stays part of the type."""
        head, sep, tail = key.rpartition(BACKEND_SEPARATOR)
        backend = Backend(tail) if sep and tail in set(Backend) else None
        base = head if backend is not None else key
        return cls(base.removesuffix(RANDOM_SUFFIX), base.endswith(RANDOM_SUFFIX), backend)
