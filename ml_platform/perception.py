"""Detections and embeddings for stored images: decode, detect, crop, embed in batches.

No Dagster here: the assets call these functions. The next batch is decoded and cropped on a
worker thread while the current one runs through the model (PIL and torch release the GIL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from ml_platform.domain import DerivativeType, Focus, IngestedImage
from ml_platform.storage.detections_table import DetectionRow
from ml_platform.storage.vectors import EmbeddingRow
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import ImageDecodeError, load_rgb
from ml_platform.vision.detectors import DetectionResult, Detector
from ml_platform.vision.embedders import Embedder

log = logging.getLogger(__name__)
WHOLE_IMAGE_DRAFT = (448, 448)  # JPEG decodes at >= this size: enough for 224 px models


def detect_one(detector: Detector, entry: IngestedImage) -> DetectionRow:
    assert entry.path is not None
    try:
        result = detector.detect(load_rgb(Path(entry.path)))
    except (ImageDecodeError, OSError) as exc:
        log.warning("detection skipped image %s: %s", entry.image.id, exc)
        return DetectionRow(entry.image.id, "failed", error=f"{type(exc).__name__}: {exc}")
    return DetectionRow(
        image_id=entry.image.id,
        status="ok",
        person=result.person,
        face=result.face,
        faces_found=result.faces_found,
        person_detector=result.person_detector,
        face_detector=result.face_detector,
    )


def as_result(row: DetectionRow) -> DetectionResult:
    return DetectionResult(
        person=row.person,
        face=row.face,
        person_detector=row.person_detector,
        face_detector=row.face_detector,
        faces_found=row.faces_found,
    )


Prepared = tuple[int, Image.Image | None, str | None]  # image id, crop or None, status reason


def prepare(entry: IngestedImage, focus: Focus, detection: DetectionRow | None) -> Prepared:
    """Decode and crop one image for `focus`; (id, None, reason) when there is nothing to embed."""
    image_id = entry.image.id
    whole = focus.derivative_type is DerivativeType.WHOLE_IMAGE
    if not whole and (detection is None or detection.status != "ok"):
        return image_id, None, "failed: no detection for this image"
    assert entry.path is not None
    try:
        image = load_rgb(Path(entry.path), draft_size=WHOLE_IMAGE_DRAFT if whole else None)
    except (ImageDecodeError, OSError) as exc:
        return image_id, None, f"failed: {type(exc).__name__}: {exc}"
    if whole:
        return image_id, image, None
    assert detection is not None
    crop = crop_for(image, focus.derivative_type, as_result(detection))
    if crop is None:
        return image_id, None, f"no_derivative: no {focus.derivative_type.value} detected"
    return image_id, crop, None


def _chunks(items: Sequence[IngestedImage], size: int) -> Iterator[Sequence[IngestedImage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_focus(
    entries: Sequence[IngestedImage],
    detections: dict[int, DetectionRow],
    focus: Focus,
    embedder: Embedder,
    batch_size: int,
) -> list[EmbeddingRow]:
    """Embed `entries` for `focus` in batches, prefetching the next batch on a thread."""
    rows: list[EmbeddingRow] = []
    chunks = list(_chunks(entries, batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:

        def submit(chunk: Sequence[IngestedImage]) -> Future[list[Prepared]]:
            return pool.submit(
                lambda: [prepare(e, focus, detections.get(e.image.id)) for e in chunk]
            )

        pending = submit(chunks[0]) if chunks else None
        for index in range(len(chunks)):
            assert pending is not None
            prepared = pending.result()
            pending = submit(chunks[index + 1]) if index + 1 < len(chunks) else None
            rows.extend(_embed_prepared(prepared, embedder))
    return rows


def _embed_prepared(prepared: list[Prepared], embedder: Embedder) -> list[EmbeddingRow]:
    rows = []
    ready = [(i, img) for i, img, _ in prepared if img is not None]
    for image_id, image, reason in prepared:
        if image is None:
            status, _, detail = (reason or "failed: unknown").partition(": ")
            rows.append(EmbeddingRow(image_id, status, error=detail))
    if ready:
        vectors = embedder.embed([img for _, img in ready])
        rows.extend(
            EmbeddingRow(i, "ok", vector) for (i, _), vector in zip(ready, vectors, strict=True)
        )
    return rows
