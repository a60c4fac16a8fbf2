"""`detections`: the prominent person and face of every image, computed once per image."""

from collections import Counter

import dagster as dg

from ml_platform.defs.partitions import ingestion_batches
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import IngestStatus
from ml_platform.services.perception import detect_one
from ml_platform.store.detections_table import read_detections, write_detections
from ml_platform.store.tables import read_catalog


@dg.asset(
    group_name="perception",
    partitions_def=ingestion_batches,
    deps=["image_catalog"],
    kinds={"opencv", "parquet"},
)
def detections(
    context: dg.AssetExecutionContext, storage: StorageResource, models: ModelsResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Prominent person (YOLO ONNX or HOG) and prominent face (YuNet or Haar, searched inside
    the person) per image; reused by every focus. An image without a face is a normal result."""
    key = context.partition_key
    layout = storage.layout()
    rerun = layout.store.exists(layout.detections(key))
    earlier = read_detections(layout, key) if rerun else {}
    previous = {i: r for i, r in earlier.items() if r.status == "ok"}
    catalog = [e for e in read_catalog(layout, key) if e.status is IngestStatus.OK]
    todo = [e for e in catalog if e.image.id not in previous]
    detector = models.detector() if todo else None
    images = layout.images()
    fresh = [detect_one(detector, images, e) for e in todo] if detector else []
    rows = [*previous.values(), *fresh]
    write_detections(layout, key, rows)
    counts = Counter(r.status for r in rows)
    detectors = Counter(f"{r.person_detector}/{r.face_detector}" for r in rows if r.status == "ok")
    return dg.MaterializeResult(
        metadata={
            "images": len(rows),
            "computed_now": len(fresh),
            "with_person": sum(r.person is not None for r in rows),
            "with_face": sum(r.face is not None for r in rows),
            "failed": counts.get("failed", 0),
            "detectors (person/face)": dg.MetadataValue.json(dict(detectors)),
            "path": dg.MetadataValue.path(layout.store.url_of(layout.detections(key))),
        }
    )
