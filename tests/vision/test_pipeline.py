"""embed_images: order, skipped items with reasons, prefetch equivalence, JPEG drafts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import Dinov2Config

from ml_platform.vision.embedders import Embedder, EmbedderOptions, build_random_embedder
from ml_platform.vision.pipeline import (
    draft_size_for,
    embed_images,
    iter_embedded_batches,
    path_loader,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2)
    return build_random_embedder("embed_dino_v2", config, EmbedderOptions(batch_size=2))


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five JPEGs of different colours and sizes plus one corrupt file."""
    directory = tmp_path_factory.mktemp("photos")
    for index in range(5):
        colour = (index * 50, 255 - index * 40, 128)
        Image.new("RGB", (300 + 40 * index, 260), colour).save(directory / f"p{index}.jpg")
    (directory / "broken.jpg").write_bytes(b"not a jpeg")
    return directory


def _photos(directory: Path) -> list[Path]:
    return sorted(directory.glob("p*.jpg"))


@pytest.mark.parametrize("prefetch", [True, False])
def test_embed_images_keeps_input_order_and_matches_direct_embedding(
    embedder: Embedder, photo_dir: Path, prefetch: bool
) -> None:
    paths = _photos(photo_dir)
    result = embed_images(paths, embedder, prefetch=prefetch)
    assert result.items == tuple(paths)
    assert result.skipped == ()
    direct = embedder.embed([path_loader(draft_size_for(embedder))(p) for p in paths])
    assert np.allclose(result.vectors, direct, atol=1e-5)


def test_undecodable_files_and_missing_derivatives_are_skipped_with_reasons(
    embedder: Embedder, photo_dir: Path
) -> None:
    paths = [*_photos(photo_dir), photo_dir / "broken.jpg", photo_dir / "absent.jpg"]
    plain = path_loader()

    def load(path: Path) -> Image.Image | None:
        return None if path.name == "p1.jpg" else plain(path)

    result = embed_images(paths, embedder, load=load)
    assert [p.name for p in result.items] == ["p0.jpg", "p2.jpg", "p3.jpg", "p4.jpg"]
    assert result.vectors.shape == (4, embedder.dim)
    reasons = {s.item.name: s.reason for s in result.skipped}
    assert reasons["p1.jpg"] == "no such derivative"
    assert "ImageDecodeError" in reasons["broken.jpg"]
    assert "absent.jpg" in reasons


def test_batches_follow_the_batch_size(embedder: Embedder, photo_dir: Path) -> None:
    batches = list(iter_embedded_batches(_photos(photo_dir), embedder, batch_size=2))
    assert [len(b.items) for b in batches] == [2, 2, 1]


def test_a_batch_with_nothing_to_embed_yields_an_empty_matrix(embedder: Embedder) -> None:
    result = embed_images(["a", "b"], embedder, load=lambda _: None)
    assert result.vectors.shape == (0, embedder.dim)
    assert len(result.skipped) == 2


def test_no_items_give_an_empty_result(embedder: Embedder) -> None:
    assert embed_images([], embedder).vectors.shape == (0, embedder.dim)


def test_draft_decoding_keeps_at_least_the_resize_size(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2400, 1600), (10, 20, 30)).save(path)
    assert draft_size_for(embedder) == (256, 256)
    image = path_loader(draft_size_for(embedder))(path)
    assert min(image.size) >= 256
    assert image.size == (600, 400)  # JPEG decoded at 1/4 scale
