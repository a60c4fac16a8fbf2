"""`GET /v1/images/{id}/thumbnail` on materialized thumbnails; the clusters API links them."""

from __future__ import annotations

import io

import dagster as dg
import numpy as np
from PIL import Image

from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.assets.thumbnails import thumbnails
from ml_platform.defs.resources import StorageResource
from ml_platform.domain import Focus
from tests.defs.assets.test_clusters import pet_images
from tests.serving.conftest import AppFactory
from tests.synthetic_home import add_batch

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")


def materialize(storage: StorageResource, assets: list[dg.AssetsDefinition]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", ["b1"])
    result = dg.materialize(
        assets, partition_key="b1", instance=instance, resources={"storage": storage},
        run_config={"ops": {"pet_heroes": {"config": {"floor": {"megapixels": 0.0}}}}}
        if pet_heroes in assets else None,
    )  # fmt: skip
    assert result.success


def test_thumbnail_is_served_as_jpeg_and_unknown_images_get_a_404_sentence(
    make_app: AppFactory,
) -> None:
    harness = make_app()
    storage = StorageResource(home=str(harness.settings.resolved_home))
    rng = np.random.default_rng(0)
    add_batch(storage, "b1", pet_images(5, 1, 9, rng.standard_normal((3, 16)) * 3, rng), [FOCUS])

    before = harness.client.get("/v1/images/1/thumbnail")
    assert before.status_code == 404 and "materialize `thumbnails`" in before.json()["detail"]
    materialize(storage, [thumbnails])
    reply = harness.client.get("/v1/images/1/thumbnail")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(reply.content)) as image:
        assert image.format == "JPEG" and image.size == (64, 48)

    unknown = harness.client.get("/v1/images/999/thumbnail")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "image 999 is unknown: no ingestion batch holds it"


def test_clusters_api_gives_thumbnail_urls_and_weights(make_app: AppFactory) -> None:
    harness = make_app()
    storage = StorageResource(home=str(harness.settings.resolved_home))
    rng = np.random.default_rng(1)
    add_batch(storage, "b1", pet_images(5, 1, 12, rng.standard_normal((2, 16)) * 3, rng), [FOCUS])
    materialize(storage, [thumbnails, pet_clusters, pet_heroes])

    body = harness.client.get("/v1/pets/5/clusters").json()
    assert body["weights"] == "pretrained"  # what tests.synthetic_home's embedder says
    hero = body["clusters"][0]["heroes"][0]
    assert hero["thumbnail_url"] == f"/v1/images/{hero['image_id']}/thumbnail"
    assert harness.client.get(hero["thumbnail_url"]).status_code == 200
