"""catalog -> detections -> embeddings with the store on S3: one run, a second worker reads it.

The store is moto's S3 server through ML_PLATFORM_STORE_URL / ML_PLATFORM_S3_ENDPOINT_URL
(as resource overrides); of the platform's data only the metadata database is under the home.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ml_platform.defs.assets.detections import detections
from ml_platform.defs.assets.embeddings import embeddings
from ml_platform.defs.assets.images import image_catalog
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus, IngestStatus
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.store.detections_table import read_detections
from ml_platform.store.tables import read_catalog
from ml_platform.store.vectors import read_rows
from tests.crawlr_server import CrawlrServer, CrawlrState
from tests.servers import S3Server as MotoS3
from tests.synthetic_home import set_collections

CLIP_WHOLE = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")


def test_a_batch_materializes_on_s3_and_another_home_reads_it(
    tmp_path: Path, moto_s3: MotoS3, s3_store_url: str, tiny_model_dirs: dict[str, Path]
) -> None:
    home = tmp_path / "worker-a"
    overrides = {
        "store_url": s3_store_url, "s3_endpoint_url": moto_s3.endpoint_url,
        "clip_model": str(tiny_model_dirs["clip"]), "dino_model": str(tiny_model_dirs["dino"]),
        "crawlr_retries": "0",
    }  # fmt: skip
    storage = StorageResource(home=str(home), overrides=overrides)
    set_collections(storage, [Collection(1, "a", CLIP_WHOLE)])
    state = CrawlrState()
    for image_id in (1, 2, 3):
        state.add_image(image_id, pet_id=7)
    with CrawlrServer(state) as server:
        crawlr = CrawlrResource(home=str(home), source=server.url, overrides=overrides)
        batch, _ = crawlr.next_batch(FeedCursor(), storage.metadata())
        assert batch is not None
        register_batch(batch, storage.manifests(), storage.metadata())
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("ingestion_batches", [batch.key])
        resources = {
            "crawlr": crawlr, "storage": storage,
            "models": ModelsResource(home=str(home), overrides=overrides),
        }  # fmt: skip
        result = dg.materialize(
            [image_catalog, detections, embeddings], partition_key=batch.key,
            instance=instance, resources=resources,
        )  # fmt: skip
    assert result.success
    local = {p.name for p in (home / "data").rglob("*") if p.is_file()}
    assert {n.split("-")[0] for n in local} == {"metadata.sqlite"}  # with its -wal, -shm
    assert not (home / "images").exists()  # image bytes went to the bucket too

    other = StorageResource(home=str(tmp_path / "worker-b"), overrides=overrides).layout()
    catalog = read_catalog(other, batch.key)
    assert [e.status for e in catalog] == [IngestStatus.OK] * 3
    assert all(e.path and e.path.startswith("images/") for e in catalog)
    assert other.images().read(catalog[0].path or "")[:2] == b"\xff\xd8"  # the JPEG itself
    assert set(read_detections(other, batch.key)) == {1, 2, 3}
    rows = read_rows(other, CLIP_WHOLE, batch.key)
    assert sorted(r.image_id for r in rows if r.status == "ok") == [1, 2, 3]
