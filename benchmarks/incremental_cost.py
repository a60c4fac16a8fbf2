"""Cost grows with the new batch, not with history.

Prints the wall time of one new batch (catalog from a local snapshot, detections, a tiny
random-weight embedder, pet clusters, pet heroes) on homes with 1, 10 and 100 batches of
synthetic history, and the time to plan retraining for 10k collections over 200k images.
Goals (issue 9): batch at history 100 / batch at history 1 <= 1.3; planning <= 5 s.

    python benchmarks/incremental_cost.py [--batch-images 500] [--histories 1,10,100]

Synthetic history: each past batch holds its own pets (a pet's photos arrive over a couple
of batches), plus one older batch that shares pets with the new batch, as in real feeds.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from ml_platform.defs.assets.clusters import pet_clusters, pet_heroes
from ml_platform.defs.assets.detections import detections
from ml_platform.defs.assets.embeddings import embeddings
from ml_platform.defs.assets.images import image_catalog
from ml_platform.defs.planning import retrain_runs
from ml_platform.defs.resources import CrawlrResource, StorageResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import (
    Collection,
    DerivativeType,
    Focus,
    ImageRecord,
    IngestedImage,
    IngestStatus,
)
from ml_platform.services.batches import FeedCursor, register_batch
from ml_platform.services.retraining import RetrainPolicy, label_token
from ml_platform.store.collections_file import write_collections
from ml_platform.store.detections_table import DetectionRow, write_detections
from ml_platform.store.tables import write_catalog
from ml_platform.store.vectors import EmbeddingRow, write_embeddings
from ml_platform.vision.embedders.identity import EmbedderIdentity

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def tiny_models(root: Path) -> dict[str, str]:
    """Tiny random-weight CLIP and DINOv2 checkpoints (the real loading code, small size)."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        projection_dim=16, image_size=224, patch_size=32,
    )  # fmt: skip
    CLIPVisionModelWithProjection(config).save_pretrained(root / "clip")
    CLIPImageProcessor().save_pretrained(root / "clip")
    return {"clip_model": str(root / "clip"), "dino_model": str(root / "clip")}


def snapshot(root: Path, first_id: int, n: int, pets: list[int]) -> None:
    """A crawlr snapshot directory with `n` small JPEGs from `first_id` on."""
    (root / "media").mkdir(parents=True, exist_ok=True)
    rng, images = np.random.default_rng(first_id), []
    for i in range(first_id, first_id + n):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buffer, "JPEG")
        (root / "media" / f"{i}.jpg").write_bytes(buffer.getvalue())
        images.append({"id": i, "url": f"/media/{i}.jpg", "pet_id": pets[i % len(pets)],
                       "created_at": "2025-06-01T00:00:00Z", "collection_ids": [1]})  # fmt: skip
    (root / "images.json").write_text(json.dumps({"images": images}))
    collections = [
        {
            "id": 1,
            "name": "all",
            "collection_focus": {
                "derivative_type_name": "whole_image",
                "embedding_type_name": "embed_clip_vit_b_32",
            },
        }
    ]
    (root / "collections.json").write_text(json.dumps(collections))


def synthetic_batch(
    storage: StorageResource,
    key: str,
    ids: range,
    pets: list[int],
    with_files: bool,
    who: EmbedderIdentity,
) -> None:
    """A past batch as the stages leave it: metadata, catalog, detections, embeddings. Image
    files are stored only where `with_files` is set: batches whose pets never come back are
    never read by the new batch's stages, which is what this benchmark checks."""
    records = [ImageRecord(i, f"/media/{i}.jpg", BASE + timedelta(seconds=i), pets[i % len(pets)],
                           (1,), ()) for i in ids]  # fmt: skip
    storage.metadata().register_batch(key, records)
    layout = storage.layout()
    paths = {r.id: "-" for r in records}
    for r in records if with_files else []:
        buffer = io.BytesIO()
        Image.new("RGB", (128, 96), (r.id % 255, 90, 160)).save(buffer, "PNG")
        _, paths[r.id] = layout.images().put(buffer.getvalue(), "PNG")
    ingested = [IngestedImage(image=r, status=IngestStatus.OK, sha256=f"{r.id:064x}",
                              path=paths[r.id], width=128, height=96) for r in records]  # fmt: skip
    write_catalog(layout, key, ingested)
    write_detections(layout, key, [DetectionRow(i, "ok") for i in ids])
    rng = np.random.default_rng(ids.start)
    rows = [EmbeddingRow(i, "ok", rng.standard_normal(16).astype(np.float32)) for i in ids]
    write_embeddings(layout, CLIP, key, rows, who, 16)


def new_batch_seconds(history: int, n: int, models: dict[str, str], work: Path) -> float:
    home = work / f"home-{history}"
    overrides = {**models, "allow_random_weights": "true", "batch_max_images": str(n)}
    storage = StorageResource(home=str(home), overrides=overrides)
    write_collections(storage.layout(), [Collection(1, "all", CLIP)])
    models_resource = ModelsResource(home=str(home), overrides=overrides)
    embedder = models_resource.embedder(CLIP.embedding_type)  # history made by the same model
    who = EmbedderIdentity.of(embedder)
    for b in range(history):
        pets = [10_000 + b * 10 + p for p in range(10)]
        ids = range(1_000_000 + b * n, 1_000_000 + (b + 1) * n)
        synthetic_batch(storage, f"hist-{b:04d}", ids, pets, b == 0, who)
    shared = [10_000 + p for p in range(5)]  # pets of the oldest batch come back
    source = work / f"snap-{history}"
    snapshot(source, 1, n, [*shared, *range(90_000, 90_005)])
    crawlr = CrawlrResource(home=str(home), overrides=overrides, source=str(source))
    batch, _ = crawlr.next_batch(FeedCursor(), storage.metadata())
    assert batch is not None
    register_batch(batch, storage.manifests(), storage.metadata())
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("ingestion_batches", [batch.key])
    resources = {"crawlr": crawlr, "storage": storage,
                 "models": models_resource}  # fmt: skip
    assets = [image_catalog, detections, embeddings, pet_clusters, pet_heroes]
    started = time.perf_counter()
    result = dg.materialize(assets, partition_key=batch.key, instance=instance, resources=resources)
    seconds = time.perf_counter() - started
    assert result.success
    return seconds


def planning_seconds(work: Path, collections: int, images: int) -> float:
    """Retrain planning over a labels index of `images` images in `collections` collections,
    each already trained once (so planning must compare every one)."""
    storage = StorageResource(home=str(work / "planning"))
    rng = np.random.default_rng(0)
    members = rng.integers(1, collections + 1, size=(images, 2))
    per_batch = 5_000
    for start in range(0, images, per_batch):
        ids = range(start + 1, min(images, start + per_batch) + 1)
        records = [ImageRecord(i, "-", BASE, None, tuple({int(c) for c in members[i - 1]}), ())
                   for i in ids]  # fmt: skip
        storage.metadata().register_batch(f"b{start:07d}", records)
    cols = [Collection(c, f"c{c}", CLIP) for c in range(1, collections + 1)]
    write_collections(storage.layout(), cols)
    instance = dg.DagsterInstance.ephemeral()
    counts = storage.metadata().label_fingerprints()
    instance.add_dynamic_partitions("collections", [str(c) for c in range(1, collections + 1)])
    for c in range(1, collections + 1):
        version = label_token(CLIP.key, counts.get(c, (0, 0, 0))) if c % 10 else "stale"
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "collection_classifier", partition=str(c), tags={"dagster/data_version": version}
            )
        )
    started = time.perf_counter()
    todo = retrain_runs(instance, storage, RetrainPolicy(min_positives=5))
    seconds = time.perf_counter() - started
    print(f"retrain planning: {collections} collections, {images} images -> {len(todo)} to "
          f"retrain (expected about {collections // 10}) in {seconds:.2f} s")  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-images", type=int, default=500)
    parser.add_argument("--histories", default="1,10,100")
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = tiny_models(work / "models")
        times = {}
        for history in (int(h) for h in args.histories.split(",")):
            times[history] = new_batch_seconds(history, args.batch_images, models, work)
            print(f"new {args.batch_images}-image batch with {history} batches of history: "
                  f"{times[history]:.1f} s")  # fmt: skip
        low, high = min(times), max(times)
        print(f"ratio history {high} / history {low}: {times[high] / times[low]:.2f} (goal <= 1.3)")
        planning = planning_seconds(work, args.collections, args.images)
        print(f"retrain planning: {planning:.2f} s (goal <= 5 s)")


if __name__ == "__main__":
    main()
