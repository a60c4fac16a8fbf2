"""The clusters API on real materializations, and serving a random-weight demo champion."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np

from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import DerivativeType, Focus, WeightsStatus
from tests.defs.assets.test_clusters import pet_images
from tests.serving.conftest import CLIP, AppFactory, Store, analyze_json, image_bytes
from tests.synthetic_home import add_batch

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")


def materialize(storage: StorageResource, instance: dg.DagsterInstance, key: str) -> None:
    instance.add_dynamic_partitions("ingestion_batches", [key])
    result = dg.materialize(
        [pet_clusters, pet_heroes], partition_key=key, instance=instance,
        resources={"storage": storage},
        # the synthetic images are 64 x 48 noise: under the default hero floor's 0.01 MP
        run_config={"ops": {"pet_heroes": {"config": {"floor": {"megapixels": 0.0}}}}},
    )  # fmt: skip
    assert result.success


def test_pet_clusters_are_served_and_follow_a_newer_materialization(
    make_app: AppFactory, tmp_path: Path
) -> None:
    harness = make_app()
    storage = StorageResource(home=str(harness.settings.resolved_home))
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 32)) * 3
    instance = dg.DagsterInstance.ephemeral()
    add_batch(storage, "b1", pet_images(5, 1, 15, centres, rng), [FOCUS])
    materialize(storage, instance, "b1")

    reply = harness.client.get("/v1/pets/5/clusters")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["n_images"] == 15 and len(body["clusters"]) == 3
    assert abs(sum(c["share"] for c in body["clusters"]) - (1 - body["n_outliers"] / 15)) < 1e-3
    hero = body["clusters"][0]["heroes"][0]
    assert {"sharpness", "recency", "centrality"} <= set(hero["parts"])

    add_batch(storage, "b2", pet_images(5, 100, 6, centres, rng), [FOCUS])
    materialize(storage, instance, "b2")
    assert harness.client.get("/v1/pets/5/clusters").json()["n_images"] == 21

    missing = harness.client.get("/v1/pets/77/clusters")
    assert missing.status_code == 404 and "pet 77" in missing.json()["detail"]


def test_random_weight_champion_is_served_with_the_seeded_random_embedder(
    make_app: AppFactory, store: Store, tmp_path: Path
) -> None:
    store.register(60, DerivativeType.WHOLE_IMAGE, CLIP, 512, weights=WeightsStatus.RANDOM)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    harness = make_app(spy_embedders=False, allow_random_weights=False, clip_model=str(empty))
    reply = harness.client.post(
        "/v1/analyze", json=analyze_json(image_bytes(), {"type": "classify", "collection_id": 60})
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()["results"][0]["result"]
    assert result["embedder"]["weights"] == "random" and result["embedder"]["dim"] == 512
    assert result["classifier_weights"] == "random"
