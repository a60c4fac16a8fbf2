"""A platform home with coloured photos in two crawlr collections, for the dataset tests.

Red images are members of collection 21, blue ones of collection 22; a few greenish images
are in no collection (label suggestions are made for them). Pets own two photos each, so the
grouped split has something to group. A tiny ViT checkpoint stands in for the real models.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from ml_platform.defs.resources import StorageResource
from ml_platform.domain import ImageRecord, IngestedImage, IngestStatus
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from ml_platform.store.tables import write_catalog as write_catalog_table

RED, BLUE = 21, 22
COLOURS = {RED: (200, 40, 40), BLUE: (40, 40, 200), None: (40, 180, 60)}
DATASETS_YAML = "datasets:\n  colours:\n    classes:\n      red: 21\n      blue: 22\n"


def photo(colour: tuple[int, int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 25, (40, 48, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def coloured_images(root: Path, per_class: int = 12, unlabelled: int = 3) -> list[IngestedImage]:
    """The photos, put in the image store of the home at `root`."""
    plan = [RED] * per_class + [BLUE] * per_class + [None] * unlabelled
    base = datetime(2025, 1, 1, tzinfo=UTC)
    store = Layout.for_settings(Settings(home=root)).images()
    out = []
    for index, collection in enumerate(plan, start=1):
        sha, key = store.put(photo(COLOURS[collection], index), "PNG")
        members = () if collection is None else (collection,)
        record = ImageRecord(index, f"/media/{index}.png", base + timedelta(hours=index),
                             pet_id=(index + 1) // 2, collection_ids=members)  # fmt: skip
        out.append(IngestedImage(record, IngestStatus.OK, sha256=sha, path=key,
                                 width=48, height=40))  # fmt: skip
    return out


def write_catalog(storage: StorageResource, key: str, images: list[IngestedImage]) -> None:
    write_catalog_table(storage.layout(), key, images)
    storage.metadata().register_batch(key, [e.image for e in images])


def tiny_vit(directory: Path) -> Path:
    """A 2-class tiny ViT saved like a hub checkpoint (random weights, real loading code)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=2)  # fmt: skip
    ViTForImageClassification(config).save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory
