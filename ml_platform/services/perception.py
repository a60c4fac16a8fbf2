"""Detections and embeddings for stored images: decode, detect, crop, embed in batches.

No Dagster here: the assets call these functions. Embedding goes through
`vision.pipeline`, which decodes, crops and preprocesses the next batch on a worker thread
while the current one runs through the model.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence

from PIL import Image

from ml_platform.domain import DerivativeType, Focus, IngestedImage
from ml_platform.store.blobs import MissingInputError
from ml_platform.store.detections_table import DetectionRow
from ml_platform.store.image_store import ImageStore
from ml_platform.store.vectors import EmbeddingRow
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import STORED_MAX_PIXELS, ImageDecodeError, decode_image
from ml_platform.vision.detectors import DetectionResult, Detector
from ml_platform.vision.embedders import Embedder
from ml_platform.vision.faces.model_files import FacesExtraMissingError
from ml_platform.vision.faces.quality import FaceQuality
from ml_platform.vision.faces.scoring import quality_of_face
from ml_platform.vision.pipeline import NO_DERIVATIVE, iter_embedded_batches

log = logging.getLogger(__name__)
# The detector's result, field by field, as a DetectionRow records it.
RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(DetectionResult))
WHOLE_IMAGE_DRAFT = (448, 448)  # JPEG decodes at >= this size: enough for 224 px models


class StoredImageMissingError(RuntimeError):
    """The catalog lists an image whose bytes are not in the Store: the store is incomplete
    (e.g. a worker that does not share ML_PLATFORM_STORE_URL); never a per-image failure."""


def stored_rgb(
    images: ImageStore, entry: IngestedImage, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """A stored image's bytes from the Store, decoded as oriented RGB."""
    assert entry.path is not None, f"image {entry.image.id} was not stored"
    try:
        data = images.read(entry.path)
    except MissingInputError as exc:
        raise StoredImageMissingError(
            f"image {entry.image.id} is catalogued but missing from the store: {exc}; every "
            "worker must use the same ML_PLATFORM_STORE_URL"
        ) from exc
    return decode_image(data, max_pixels=STORED_MAX_PIXELS, draft_size=draft_size).image


def detect_one(detector: Detector, images: ImageStore, entry: IngestedImage) -> DetectionRow:
    try:  # undecodable bytes are recorded; missing ones raise StoredImageMissingError
        image = stored_rgb(images, entry)
        result = detector.detect(image)
    except (ImageDecodeError, OSError) as exc:
        log.warning("detection skipped image %s: %s", entry.image.id, exc)
        return DetectionRow(entry.image.id, "failed", error=f"{type(exc).__name__}: {exc}")
    quality = face_quality_or_none(image, result)
    return DetectionRow(
        image_id=entry.image.id,
        status="ok",
        **{name: getattr(result, name) for name in RESULT_FIELDS},
        face_quality=quality.score if quality else None,
        face_sharpness=quality.sharpness if quality else None,
        face_frontal=quality.frontal if quality else None,
    )


def face_quality_or_none(image: Image.Image, result: DetectionResult) -> FaceQuality | None:
    """The prominent face's quality; None when there is no face, or without the [faces]
    extra (stored as not measured, so no face is skipped for training)."""
    if result.face is None:
        return None
    try:
        return quality_of_face(image, result.face)
    except FacesExtraMissingError as exc:
        _warn_once(str(exc))
        return None


@functools.lru_cache(maxsize=1)
def _warn_once(message: str) -> None:
    log.warning("face quality not measured: %s", message)


def as_result(row: DetectionRow) -> DetectionResult:
    """The detector's result that a stored row keeps flat."""
    return DetectionResult(**{name: getattr(row, name) for name in RESULT_FIELDS})


def crop_loader(
    focus: Focus, detections: dict[int, DetectionRow], images: ImageStore
) -> Callable[[IngestedImage], Image.Image | None]:
    """Decode a stored image and cut `focus`'s derivative from it (None: there is none)."""
    whole = focus.derivative_type is DerivativeType.WHOLE_IMAGE

    def load(entry: IngestedImage) -> Image.Image | None:
        image = stored_rgb(images, entry, WHOLE_IMAGE_DRAFT if whole else None)
        if whole:
            return image
        return crop_for(image, focus.derivative_type, as_result(detections[entry.image.id]))

    return load


def embed_focus(
    entries: Sequence[IngestedImage],
    detections: dict[int, DetectionRow],
    focus: Focus,
    embedder: Embedder,
    batch_size: int,
    images: ImageStore,
) -> list[EmbeddingRow]:
    """Embed `entries` for `focus` in batches; decoding and cropping overlap inference."""
    whole = focus.derivative_type is DerivativeType.WHOLE_IMAGE
    detected = [e for e in entries if whole or _detected(detections, e.image.id)]
    rows = [
        EmbeddingRow(e.image.id, "failed", error="no detection for this image")
        for e in entries
        if e not in detected
    ]
    load = crop_loader(focus, detections, images)
    for batch in iter_embedded_batches(detected, embedder, load=load, batch_size=batch_size):
        rows.extend(
            EmbeddingRow(e.image.id, "ok", v)
            for e, v in zip(batch.items, batch.vectors, strict=True)
        )
        for skipped in batch.skipped:
            no_crop = skipped.reason == NO_DERIVATIVE
            status, error = (
                ("no_derivative", f"no {focus.derivative_type.value} detected")
                if no_crop
                else ("failed", skipped.reason)
            )
            rows.append(EmbeddingRow(skipped.item.image.id, status, error=error))
    return rows


def _detected(detections: dict[int, DetectionRow], image_id: int) -> bool:
    row = detections.get(image_id)
    return row is not None and row.status == "ok"
