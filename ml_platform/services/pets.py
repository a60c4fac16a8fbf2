"""Per-pet views of the stored data: which pets a batch touches, their vectors, hero inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from ml_platform.domain import IngestedImage
from ml_platform.learning.cluster_store import PetClusters
from ml_platform.learning.hero import HeroCandidate, HeroPick, QualityParts, image_quality
from ml_platform.services.perception import stored_rgb
from ml_platform.services.training_data import EmbeddedFocus
from ml_platform.store.detections_table import DetectionRow
from ml_platform.store.image_store import ImageStore

PetVectors = dict[int, tuple[list[int], NDArray[np.float32]]]


def pets_of(images: list[IngestedImage]) -> set[int]:
    return {e.image.pet_id for e in images if e.image.pet_id is not None}


def pet_vectors(images: list[IngestedImage], embedded: EmbeddedFocus, pets: set[int]) -> PetVectors:
    """Each pet's image ids and vectors (images without a vector of the focus are left out)."""
    pet_of = {e.image.id: e.image.pet_id for e in images if e.image.pet_id in pets}
    rows: dict[int, list[int]] = {}
    for row, image_id in enumerate(embedded.ids.tolist()):
        pet = pet_of.get(int(image_id))
        if pet is not None:
            rows.setdefault(pet, []).append(row)
    return {
        pet: ([int(embedded.ids[r]) for r in idx], embedded.vectors[idx])
        for pet, idx in rows.items()
    }


def measure_quality(
    store: ImageStore, images: list[IngestedImage], known: dict[int, QualityParts]
) -> dict[int, QualityParts]:
    """Quality of every image not measured yet (decoded at reduced size)."""
    out = {}
    for entry in images:
        if entry.image.id not in known and entry.path:
            out[entry.image.id] = image_quality(stored_rgb(store, entry, draft_size=(512, 512)))
    return out


@dataclass(frozen=True)
class HeroInputs:
    images: dict[int, IngestedImage]
    quality: dict[int, QualityParts]
    detections: dict[int, DetectionRow]


def candidate(image_id: int, vector: NDArray[np.float32], inputs: HeroInputs) -> HeroCandidate:
    entry = inputs.images[image_id]
    detection = inputs.detections.get(image_id)
    box = detection and (detection.person or detection.face)
    area = (entry.width or 0) * (entry.height or 0)
    return HeroCandidate(
        image_id=image_id,
        embedding=vector,
        quality=inputs.quality[image_id],
        created_at=entry.image.created_at,
        captured_at=entry.captured_at,
        detection_score=box.score if box else None,
        box_area_fraction=box.area / area if box and area else None,
        face_quality=detection.face_quality if detection else None,
    )


def heroes_payload(
    clusters: PetClusters,
    heroes: dict[int, list[HeroPick]],
    focus: str,
    version: int,
    now: datetime,
    weights: str,
) -> dict[str, object]:
    """The JSON the clusters API serves for one pet."""
    n = len(clusters.image_ids)
    return {
        "pet_id": clusters.pet_id, "focus": focus, "cluster_version": version,
        "updated_at": now.isoformat(), "n_images": n, "n_outliers": clusters.n_outliers,
        "silhouette": clusters.silhouette, "method": clusters.method,
        "weights": weights,
        "clusters": [
            {
                "cluster_id": c.label, "size": c.size, "share": round(c.size / n, 4) if n else 0.0,
                "heroes": [
                    {"image_id": p.image_id, "score": round(p.score, 4),
                     "suppressed_duplicates": list(p.suppressed),
                     "parts": {str(k): {"value": round(v.value, 4), "weight": v.weight,
                                        "contribution": round(v.contribution, 4)}
                               for k, v in p.parts.items()}}
                    for p in heroes.get(c.label, [])
                ],
            }
            for c in clusters.clusters
        ],
    }  # fmt: skip
