"""A prominent_face collection on embed_face_dlib_resnet_v1, end to end on real photos.

Real shared photos (read in place), the real detector (YuNet), the real dlib embedder, a real
MLflow sqlite registry, a temporary Dagster instance, and the real serving app: detections
(with face quality) -> embeddings -> similarity index -> collection_classifier -> classify
and embed through /v1/analyze.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.assets.detections import detections
from ml_platform.defs.assets.embeddings import embeddings
from ml_platform.defs.assets.similarity import similarity_index
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import (
    Collection,
    DerivativeType,
    Focus,
    ImageRecord,
    IngestedImage,
    IngestStatus,
)
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.serving import ServeOptions, create_app
from ml_platform.settings import Settings
from ml_platform.store.ann import load_index
from ml_platform.store.collections_file import write_collections
from ml_platform.store.detections_table import read_detections
from ml_platform.store.image_store import ImageStore
from ml_platform.store.tables import write_catalog
from ml_platform.store.vectors import read_table, vectors_of
from ml_platform.vision.decode import load_rgb

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")

FACE = Focus(DerivativeType.PROMINENT_FACE, "embed_face_dlib_resnet_v1")
PERSON_A = ["img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg", "img6.jpg", "img7.jpg", "img10.jpg"]
OTHERS = ["img13.jpg", "img14.jpg", "img16.jpg", "img17.jpg", "img18.jpg", "img20.jpg",
          "img22.jpg", "img24.jpg"]  # fmt: skip
BLURRED_ID = 100  # a blurred photo of person A: a member, but too poor a face to learn from
COLLECTION = Collection(21, "person a", FACE)


def catalog(faces: Path, blurred: Path, images: ImageStore) -> list[IngestedImage]:
    """The photos put in the image store, as ingestion would have."""
    names = [*PERSON_A, *OTHERS]
    files = [(i + 1, faces / n) for i, n in enumerate(names)] + [(BLURRED_ID, blurred)]
    paths = [(image_id, images.put(f.read_bytes(), "JPEG")) for image_id, f in files]
    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        IngestedImage(
            image=ImageRecord(
                image_id, f"/media/{image_id}.jpg", base + timedelta(days=image_id),
                collection_ids=(21,) if image_id <= len(PERSON_A) or image_id == BLURRED_ID else (),
            ),
            status=IngestStatus.OK, sha256=stored[0], path=stored[1],
        )
        for image_id, stored in paths
    ]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> dict[str, object]:
    yunet = shared_dir / "models" / "face_detection_yunet_2023mar.onnx"
    if not yunet.is_file():
        pytest.skip(f"{yunet} not found")
    root = tmp_path_factory.mktemp("faces_home")
    faces = shared_dir / "data" / "faces"
    blurred = root / "blurred.jpg"
    load_rgb(faces / "img6.jpg").filter(ImageFilter.GaussianBlur(12)).save(blurred, quality=90)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    overrides = {"yunet_model": str(yunet), "cluster_focus": FACE.key, "mlflow_tracking_uri": uri}
    storage = StorageResource(home=str(root), overrides=overrides)
    layout = storage.layout()
    entries = catalog(faces, blurred, layout.images())
    write_catalog(layout, "b1", entries)
    storage.metadata().register_batch("b1", [e.image for e in entries])
    write_collections(layout, [COLLECTION])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1"])
    instance.add_dynamic_partitions("collections", ["21"])
    resources = {
        "storage": storage,
        "models": ModelsResource(home=str(root), overrides=overrides),
        "mlflow": MlflowResource(home=str(root), overrides=overrides),
    }
    perceive = dg.materialize(
        [detections, embeddings, similarity_index], partition_key="b1",
        instance=instance, resources=resources,
    )  # fmt: skip
    assert perceive.success
    trained = dg.materialize(
        [collection_classifier], partition_key="21", instance=instance, resources=resources
    )
    assert trained.success
    return {"root": root, "storage": storage, "faces": faces, "trained": trained,
            "yunet": yunet, "uri": uri}  # fmt: skip


def test_detections_store_face_quality_and_the_blurred_face_scores_low(
    home: dict[str, object],
) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    rows = read_detections(storage.layout(), "b1")
    threshold = storage.settings().face_quality_threshold
    assert all(r.face is not None and r.face_detector == "yunet" for r in rows.values())
    sharp = [r.face_quality for i, r in rows.items() if i != BLURRED_ID]
    assert all(q is not None and q > threshold for q in sharp), sharp
    blurred = rows[BLURRED_ID]
    assert blurred.face_quality is not None and blurred.face_quality < threshold
    assert blurred.face_sharpness is not None and blurred.face_sharpness < 0.1


def test_same_person_search_finds_person_a(home: dict[str, object]) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    index = load_index(storage.layout(), FACE, 128)
    assert index.dim == 128 and len(index) == len(PERSON_A) + len(OTHERS) + 1
    ids, vectors, _ = vectors_of([read_table(storage.layout(), FACE, "b1")])
    query = vectors[list(ids).index(1)][None, :]
    found, _ = index.search(query, k=len(PERSON_A))
    assert set(found[0].tolist()) <= set(range(1, len(PERSON_A) + 1)) | {BLURRED_ID}


def test_face_collection_trains_without_the_low_quality_face(home: dict[str, object]) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    trained: dg.ExecuteInProcessResult = home["trained"]  # type: ignore[assignment]
    (event,) = trained.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["skipped_low_quality_faces"].value == 1
    assert metadata["n_positives"].value == len(PERSON_A)
    client = MlflowResource(home=storage.home, overrides=storage.overrides).client()
    champion = get_champion(client, COLLECTION.id)
    assert champion is not None
    assert champion.tags[VersionTag.EMBEDDING_TYPE] == FACE.embedding_type
    assert champion.tags[VersionTag.DERIVATIVE_TYPE] == "prominent_face"
    assert champion.tags[VersionTag.DIMENSIONALITY] == "128"


def photo(path: Path) -> str:
    image = Image.open(path).convert("RGB")
    image.thumbnail((1024, 1024))
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_served_classifier_knows_person_a_on_unseen_photos(home: dict[str, object]) -> None:
    root: Path = home["root"]  # type: ignore[assignment]
    faces: Path = home["faces"]  # type: ignore[assignment]
    yunet: Path = home["yunet"]  # type: ignore[assignment]
    settings = Settings(home=root, yunet_model=yunet, mlflow_tracking_uri=str(home["uri"]))
    operations = [
        {"type": "classify", "collection_id": COLLECTION.id},
        {"type": "embed", "embedding_type": FACE.embedding_type, "target": "prominent_face"},
    ]
    with TestClient(create_app(settings, ServeOptions(refresh_interval_s=0.0))) as client:
        answers = {
            name: client.post(
                "/v1/analyze", json={"image_base64": photo(faces / name), "operations": operations}
            ).json()
            for name in ("img11.jpg", "img21.jpg", "img9.jpg")  # A, and two people never seen
        }
    results = {name: [o["result"] for o in a["results"]] for name, a in answers.items()}
    assert all(r is not None for rs in results.values() for r in rs), answers
    probability = {name: r[0]["probability"] for name, r in results.items()}
    # The classifier's own threshold is its business (chosen in CV on 7 positives); the
    # unseen photo of person A must still score far above both strangers.
    assert probability["img11.jpg"] > 0.5 > max(probability["img21.jpg"], probability["img9.jpg"])
    assert not results["img21.jpg"][0]["is_in_collection"]
    assert not results["img9.jpg"][0]["is_in_collection"]
    vector = np.asarray(results["img11.jpg"][1]["vector"])
    assert vector.shape == (128,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert results["img11.jpg"][1]["embedder"]["weights"] == "pretrained"
