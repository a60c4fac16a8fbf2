"""CLIP and DINOv2 embedders with tiny random configurations: dims, determinism, loading."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Dinov2Config,
    Dinov2Model,
)

from ml_platform.domain import WeightsStatus
from ml_platform.vision.embedders import (
    Embedder,
    EmbedderCache,
    EmbedderOptions,
    EmbedderUnavailableError,
    build_embedder,
    build_random_embedder,
    known_embedding_types,
    l2_normalize,
)

CLIP = "embed_clip_vit_b_32"
DINO = "embed_dino_v2"


def tiny_clip_config(image_size: int = 224) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=24,
        image_size=image_size,
        patch_size=32,
    )


def tiny_dino_config() -> Dinov2Config:
    return Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, patch_size=14
    )


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(320, 240), (240, 320), (224, 224)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@pytest.mark.parametrize(
    ("name", "config", "dim"), [(CLIP, tiny_clip_config(), 24), (DINO, tiny_dino_config(), 32)]
)
def test_tiny_random_embedders_give_dim_wide_float32_rows(
    name: str, config: object, dim: int, images: list[Image.Image]
) -> None:
    embedder = build_random_embedder(name, config)
    vectors = embedder.embed(images)
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim) == (name, dim)
    assert vectors.shape == (3, dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


@pytest.mark.parametrize(
    ("name", "config"), [(CLIP, tiny_clip_config()), (DINO, tiny_dino_config())]
)
def test_random_embedders_report_random_weights(name: str, config: object) -> None:
    embedder = build_random_embedder(name, config)
    assert embedder.weights is WeightsStatus.RANDOM
    assert embedder.revision == "random-init"


@pytest.mark.parametrize(
    ("name", "config"), [(CLIP, tiny_clip_config()), (DINO, tiny_dino_config())]
)
def test_random_init_is_seeded_and_inference_deterministic(
    name: str, config: object, images: list[Image.Image]
) -> None:
    first = build_random_embedder(name, config).embed(images)
    again = build_random_embedder(name, config)
    assert np.array_equal(first, again.embed(images))
    assert np.array_equal(first[1:], again.embed(images[1:]))  # independent of batch mates


def test_batch_size_does_not_change_the_vectors(images: list[Image.Image]) -> None:
    one = build_random_embedder(DINO, tiny_dino_config(), EmbedderOptions(batch_size=1))
    three = build_random_embedder(DINO, tiny_dino_config(), EmbedderOptions(batch_size=3))
    assert np.allclose(one.embed(images), three.embed(images), atol=1e-5)


def test_embed_equals_preprocess_then_embed_preprocessed(images: list[Image.Image]) -> None:
    embedder = build_random_embedder(CLIP, tiny_clip_config())
    pixels = embedder.preprocess(images)
    assert pixels.shape == (3, 3, 224, 224)
    assert np.allclose(embedder.embed_preprocessed(pixels), embedder.embed(images), atol=1e-6)


def test_embed_preprocessed_rejects_wrong_pixel_shapes() -> None:
    embedder = build_random_embedder(DINO, tiny_dino_config())
    with pytest.raises(ValueError, match="expects pixels"):
        embedder.embed_preprocessed(np.zeros((1, 3, 256, 256), dtype=np.float32))


def test_no_images_give_an_empty_matrix() -> None:
    assert build_random_embedder(DINO, tiny_dino_config()).embed([]).shape == (0, 32)


def test_wrong_config_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="CLIPVisionConfig"):
        build_random_embedder(CLIP, tiny_dino_config())


@pytest.mark.parametrize(
    ("name", "setting"), [(CLIP, "ML_PLATFORM_CLIP_MODEL"), (DINO, "ML_PLATFORM_DINO_MODEL")]
)
def test_missing_weights_without_random_permission_raise_with_instructions(
    name: str, setting: str, tmp_path: Path
) -> None:
    options = EmbedderOptions(clip_model=str(tmp_path), dino_model=str(tmp_path))
    with pytest.raises(EmbedderUnavailableError) as error:
        build_embedder(name, options)
    message = str(error.value)
    assert setting in message
    assert "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS=1" in message
    assert str(tmp_path) in message


def test_missing_weights_fall_back_to_the_real_architecture_when_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = EmbedderOptions(dino_model=str(tmp_path), allow_random_weights=True)
    embedder = build_embedder(DINO, options)
    assert embedder.weights is WeightsStatus.RANDOM
    assert embedder.revision == "random-init"
    assert embedder.dim == 384  # ViT-S/14, the default variant
    assert "RANDOMLY INITIALISED" in caplog.text


@pytest.fixture(scope="module")
def tiny_dino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DINOv2 checkpoint written with save_pretrained (no processor file)."""
    directory = tmp_path_factory.mktemp("tiny-dinov2")
    Dinov2Model(tiny_dino_config()).save_pretrained(directory)
    return directory


def test_a_cache_holds_one_instance_per_name_and_options(tiny_dino_dir: Path) -> None:
    cache = EmbedderCache()
    options = EmbedderOptions(dino_model=str(tiny_dino_dir))
    first = cache.get(DINO, options)
    assert first.weights is WeightsStatus.PRETRAINED
    assert cache.get(DINO, EmbedderOptions(dino_model=str(tiny_dino_dir))) is first
    assert (
        cache.get(DINO, EmbedderOptions(dino_model=str(tiny_dino_dir), batch_size=8)) is not first
    )


def test_each_owner_has_its_own_cache(tiny_dino_dir: Path) -> None:
    options = EmbedderOptions(dino_model=str(tiny_dino_dir))
    assert EmbedderCache().get(DINO, options) is not EmbedderCache().get(DINO, options)
    assert build_embedder(DINO, options) is not build_embedder(DINO, options)


def test_concurrent_first_calls_build_a_single_instance(tiny_dino_dir: Path) -> None:
    cache = EmbedderCache()
    options = EmbedderOptions(dino_model=str(tiny_dino_dir))
    with ThreadPoolExecutor(max_workers=4) as pool:
        embedders = list(pool.map(lambda _: cache.get(DINO, options), range(8)))
    assert len({id(e) for e in embedders}) == 1


def test_checkpoint_without_processor_file_uses_the_builtin_preprocessing(
    tiny_dino_dir: Path, images: list[Image.Image]
) -> None:
    embedder = build_embedder(DINO, EmbedderOptions(dino_model=str(tiny_dino_dir)))
    assert embedder.preprocess(images).shape == (3, 3, 224, 224)
    assert embedder.embed(images).shape == (3, 32)


def test_pretrained_weights_load_from_a_local_directory(
    tmp_path: Path, images: list[Image.Image]
) -> None:
    torch.manual_seed(1)
    model = CLIPVisionModelWithProjection(tiny_clip_config(image_size=64))
    model.save_pretrained(tmp_path)
    processor = {"size": {"shortest_edge": 64}, "crop_size": {"height": 64, "width": 64}}
    CLIPImageProcessorPil(**processor).save_pretrained(tmp_path)
    embedder = build_embedder(CLIP, EmbedderOptions(clip_model=str(tmp_path)))
    assert embedder.weights is WeightsStatus.PRETRAINED
    assert embedder.revision.startswith("sha256:")
    assert embedder.preprocess(images).shape == (3, 3, 64, 64)  # the checkpoint's processor
    pixels = torch.from_numpy(embedder.preprocess(images))
    with torch.inference_mode():
        expected = model.eval()(pixel_values=pixels).image_embeds.numpy()
    assert np.allclose(embedder.embed(images), expected, atol=1e-5)


def test_known_types_are_the_builtins_without_a_custom_file() -> None:
    assert known_embedding_types(EmbedderOptions()) == [CLIP, DINO, "embed_face_dlib_resnet_v1"]


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="embed_clip_vit_b_32"):
        build_embedder("embed_nope", EmbedderOptions())


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    rows = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32
