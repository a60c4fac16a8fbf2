"""Zero-shot without the model's tokenizer files (the offline demo): random towers with the
byte-level stand-in tokenizer when random weights are allowed, a clear refusal otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ml_platform.domain import WeightsStatus
from ml_platform.vision.stand_in_tokenizer import BOS, EOS, STAND_IN_NAME, stand_in_tokenizer
from ml_platform.vision.zero_shot import ZeroShotKind, ZeroShotUnavailableError, load_zero_shot

LAYERS = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
CLASSES = ["a photo of a cat", "a dog", "café"]


def tiny_checkpoint(directory: Path, kind: ZeroShotKind, vocab_size: int = 300) -> str:
    """A tiny CLIP or SigLIP configuration and nothing else: no weights, no tokenizer files."""
    from transformers import CLIPConfig, SiglipConfig

    text = {"vocab_size": vocab_size, "hidden_size": 16, "max_position_embeddings": 16, **LAYERS}
    vision = {"hidden_size": 16, "image_size": 32, "patch_size": 16, **LAYERS}
    config: Any = (
        CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)
        if kind is ZeroShotKind.CLIP
        else SiglipConfig(text_config=text, vision_config=vision)
    )
    config.save_pretrained(directory)
    return str(directory)


def photos(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(count)
    ]


@pytest.mark.parametrize("kind", list(ZeroShotKind))
def test_without_tokenizer_files_random_weights_run_on_the_stand_in_tokenizer(
    kind: ZeroShotKind, tmp_path: Path
) -> None:
    model_id = tiny_checkpoint(tmp_path, kind)
    model = load_zero_shot(kind, model_id, allow_random_weights=True)

    assert model.weights is WeightsStatus.RANDOM and model.model_id == model_id
    assert model.tokenizer.name_or_path == STAND_IN_NAME
    scores = model.scores(photos(2), CLASSES)
    assert scores.shape == (2, len(CLASSES)) and np.isfinite(scores).all()
    if kind is ZeroShotKind.CLIP:
        assert scores.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_without_tokenizer_files_and_random_weights_refused_the_error_says_what_to_do(
    tmp_path: Path,
) -> None:
    model_id = tiny_checkpoint(tmp_path, ZeroShotKind.CLIP)
    with pytest.raises(ZeroShotUnavailableError, match="no tokenizer") as caught:
        load_zero_shot(ZeroShotKind.CLIP, model_id, allow_random_weights=False)
    assert "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS=1" in str(caught.value)


def test_a_vocabulary_too_small_for_the_stand_in_is_an_unavailable_model(tmp_path: Path) -> None:
    model_id = tiny_checkpoint(tmp_path, ZeroShotKind.CLIP, vocab_size=11)
    with pytest.raises(ZeroShotUnavailableError, match="too small"):
        load_zero_shot(ZeroShotKind.CLIP, model_id, allow_random_weights=True)


def test_stand_in_tokens_are_bytes_framed_by_the_top_two_ids_and_padded_with_the_end() -> None:
    tokenizer = stand_in_tokenizer(300)
    encoded = tokenizer(["Cat", "a dog"], padding=True, truncation=True, max_length=8)

    cat, dog = encoded["input_ids"]
    assert cat[0] == tokenizer.convert_tokens_to_ids(BOS) == 298
    assert tokenizer.convert_tokens_to_ids(EOS) == 299
    assert len(cat) == len(dog) == 7 and cat[4:] == [299, 299, 299]  # padded with EOS
    assert encoded["attention_mask"][0] == [1, 1, 1, 1, 1, 0, 0]
    assert all(0 <= token < 256 for token in dog[1:-1])
    assert tokenizer.decode(cat, skip_special_tokens=True) == "cat"  # lower-cased
    long = tokenizer("x" * 50, truncation=True, max_length=8)["input_ids"]
    assert len(long) == 8 and long[-1] == 299  # truncation keeps the end token


def test_the_stand_in_refuses_a_vocabulary_without_room_for_bytes() -> None:
    with pytest.raises(ValueError, match="needs 258"):
        stand_in_tokenizer(100)
