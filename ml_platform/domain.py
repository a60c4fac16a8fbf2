"""Domain values shared by every layer: foci, collections, images, boxes.

Everything here is a StrEnum or a frozen dataclass; nothing imports Dagster, MLflow or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class DerivativeType(StrEnum):
    """Which part of an image a collection is about."""

    WHOLE_IMAGE = "whole_image"
    PROMINENT_PERSON = "prominent_person"
    PROMINENT_FACE = "prominent_face"


class BuiltinEmbeddingType(StrEnum):
    """Embedding types that ship with ml_platform; custom ONNX types come from configuration."""

    CLIP_VIT_B_32 = "embed_clip_vit_b_32"
    DINO_V2 = "embed_dino_v2"
    FACE_DLIB_RESNET_V1 = "embed_face_dlib_resnet_v1"  # the [faces] extra


class WeightsStatus(StrEnum):
    """Whether a model's weights are the real pretrained ones or a random initialisation."""

    PRETRAINED = "pretrained"
    RANDOM = "random"


@dataclass(frozen=True, order=True)
class Focus:
    """What a collection is about: a derivative (crop) embedded with one embedding type.

    `embedding_type` is a plain name because custom embedding types are declared in
    configuration; it is validated against the known names when a collection is parsed.
    """

    derivative_type: DerivativeType
    embedding_type: str

    @property
    def key(self) -> str:
        """A stable, filename-safe identifier, e.g. ``prominent_face__embed_dino_v2``."""
        return f"{self.derivative_type.value}__{self.embedding_type}"

    @classmethod
    def from_key(cls, key: str) -> Focus:
        derivative, _, embedding = key.partition("__")
        return cls(DerivativeType(derivative), embedding)


@dataclass(frozen=True)
class Collection:
    """A crawlr collection with its parsed focus; unusable ones keep the reason."""

    id: int
    name: str
    focus: Focus | None
    unusable_reason: str | None = None
    focus_id: int | None = None

    @property
    def usable(self) -> bool:
        return self.focus is not None and self.unusable_reason is None


@dataclass(frozen=True)
class ImageRecord:
    """One image as crawlr lists it."""

    id: int
    url: str
    created_at: datetime
    pet_id: int | None = None
    collection_ids: tuple[int, ...] = ()
    rejected_collection_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ImagePage:
    """One page of `GET /images.json`."""

    images: tuple[ImageRecord, ...]
    next_cursor: str | None
    malformed: tuple[str, ...] = ()  # reasons for entries that broke the contract, skipped


class LabelState(StrEnum):
    """What an image is to one collection: a member, an explicit rejection, or neither."""

    MEMBER = "member"
    REJECTED = "rejected"
    NONE = "none"


class LabelSource(StrEnum):
    """Where a label change was read: crawlr's labels endpoint, a feed rescan, a snapshot."""

    LABELS_JSON = "labels.json"
    RESCAN = "rescan"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class ImageLabels:
    """An image's current labels as crawlr states them (a whole state, never a delta)."""

    image_id: int
    collection_ids: tuple[int, ...] = ()
    rejected_collection_ids: tuple[int, ...] = ()
    updated_at: datetime | None = None  # None where crawlr gives no time (feed, snapshot)


@dataclass(frozen=True)
class LabelsPage:
    """One page of `GET /labels.json`."""

    labels: tuple[ImageLabels, ...]
    next_cursor: str | None
    malformed: tuple[str, ...] = ()  # reasons for rows that broke the contract, skipped


@dataclass(frozen=True)
class LabelChange:
    """One (image, collection) label moved from `before` to `after`."""

    image_id: int
    collection_id: int
    before: LabelState
    after: LabelState


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixel coordinates of the EXIF-oriented image."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def height(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def area(self) -> float:
        return self.width * self.height

    def offset(self, dx: float, dy: float) -> Box:
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy, self.score)


@dataclass(frozen=True)
class ImageLimits:
    """The largest image the platform takes: bytes as downloaded or sent, pixels decoded."""

    max_bytes: int
    max_pixels: int


class IngestStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class AttemptStatus(StrEnum):
    """Where an image stands in a stage that can fail transiently (a download)."""

    OK = "ok"
    RETRY = "retry"  # failed transiently; retried once next_attempt_at has passed
    FAILED = "failed"  # failed for a reason a retry cannot change (not an image, too large)
    QUARANTINED = "quarantined"  # out of attempts; `ml-platform retry-failed` re-queues it


class Stage(StrEnum):
    """The per-batch assets a batch needs before it is complete, in the order a run makes
    them; each value is the asset's key (the asset definitions and job selections use these).
    What each reads and which job makes it come from the Definitions (defs/batch_graph.py)."""

    CATALOG = "image_catalog"
    DETECTIONS = "detections"
    EMBEDDINGS = "embeddings"
    THUMBNAILS = "thumbnails"
    CLUSTERS = "pet_clusters"
    HEROES = "pet_heroes"
    SIMILARITY = "similarity_index"
    DRIFT = "batch_drift"


@dataclass(frozen=True)
class IngestedImage:
    """The outcome of ingesting one image: where it is stored, or why it was skipped."""

    image: ImageRecord
    status: IngestStatus
    sha256: str | None = None
    path: str | None = None
    width: int | None = None
    height: int | None = None
    captured_at: datetime | None = None
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
