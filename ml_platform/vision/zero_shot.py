"""Zero-shot image classification with CLIP (softmax over classes) or SigLIP (sigmoid scores).

Both towers run through transformers (`CLIPModel`, `SiglipModel`) with the model's own
tokenizer. Weights follow the embedders' rule: pretrained when `from_pretrained` works, else
a random initialisation of the model's configuration (its local `config.json`, else the
architecture's default) only when random weights are allowed. Without the model's tokenizer
files, random weights are all there can be: when they are allowed the towers are random and
a byte-level stand-in tokenizer built in code feeds them (`stand_in_tokenizer`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform.domain import WeightsStatus
from ml_platform.vision.stand_in_tokenizer import STAND_IN_NAME, stand_in_tokenizer

log = logging.getLogger(__name__)


class ZeroShotKind(StrEnum):
    CLIP = "clip"
    SIGLIP = "siglip"


class ZeroShotUnavailableError(RuntimeError):
    """A zero-shot model cannot be loaded; the message says what is missing."""


@dataclass(frozen=True)
class ZeroShotModel:
    """Text and image towers with their tokenizer and image processor."""

    kind: ZeroShotKind
    model_id: str
    weights: WeightsStatus
    model: Any  # transformers CLIPModel | SiglipModel
    tokenizer: Any
    processor: Any
    device: str

    @property
    def scoring(self) -> str:
        return "softmax" if self.kind is ZeroShotKind.CLIP else "sigmoid"

    def scores(self, images: list[Image.Image], classes: list[str]) -> NDArray[np.float32]:
        """Confidence per (image, class), float32 `[n_images, n_classes]`."""
        import torch

        text = self._tokenize(classes)
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            output = self.model(pixel_values=pixels.to(self.device), **text)
            logits = output.logits_per_image.float()
            probs = logits.softmax(dim=-1) if self.kind is ZeroShotKind.CLIP else logits.sigmoid()
        return np.asarray(probs.cpu().numpy(), dtype=np.float32)

    def _tokenize(self, classes: list[str]) -> dict[str, Any]:
        max_length = int(self.model.config.text_config.max_position_embeddings)
        if self.kind is ZeroShotKind.SIGLIP:  # trained on max_length padding, no attention mask
            encoded = self.tokenizer(
                classes, padding="max_length", truncation=True, max_length=max_length,
                return_tensors="pt",
            )  # fmt: skip
            return {"input_ids": encoded["input_ids"].to(self.device)}
        encoded = self.tokenizer(
            classes, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return {key: encoded[key].to(self.device) for key in ("input_ids", "attention_mask")}


def top_k(
    scores: NDArray[np.float32], classes: list[str], k: int, threshold: float
) -> list[tuple[str, float]]:
    """The `k` best (class, confidence) pairs with confidence >= threshold, best first.

    Ties keep the request's class order.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = [(classes[i], float(scores[i])) for i in order[:k]]
    return [(label, confidence) for label, confidence in ranked if confidence >= threshold]


def load_zero_shot(
    kind: ZeroShotKind, model_id: str, *, allow_random_weights: bool, device: str = "cpu"
) -> ZeroShotModel:
    """Load `kind` from a hub id or local directory (see the module docstring for weights).

    The tokenizer loads first: it is small and the usual thing missing offline, so a model
    that cannot be used fails before its towers (gigabytes) are built."""
    tokenizer = _load_tokenizer(model_id, allow_random_weights)
    if tokenizer is None:  # pretrained towers would be meaningless with a stand-in tokenizer
        model, tokenizer = _random_towers_and_stand_in(kind, model_id)
        weights = WeightsStatus.RANDOM
    else:
        model, weights = _load_towers(kind, model_id, allow_random_weights)
    model.to(device).eval()
    return ZeroShotModel(
        kind=kind,
        model_id=model_id,
        weights=weights,
        model=model,
        tokenizer=tokenizer,
        processor=_load_processor(kind, model_id, model.config.vision_config.image_size),
        device=device,
    )


def _classes(kind: ZeroShotKind) -> tuple[Any, Any]:
    if kind is ZeroShotKind.CLIP:
        from transformers import CLIPConfig, CLIPModel

        return CLIPModel, CLIPConfig
    from transformers import SiglipConfig, SiglipModel

    return SiglipModel, SiglipConfig


def _load_towers(
    kind: ZeroShotKind, model_id: str, allow_random: bool
) -> tuple[Any, WeightsStatus]:
    model_cls, _ = _classes(kind)
    try:
        return model_cls.from_pretrained(model_id), WeightsStatus.PRETRAINED
    except (OSError, ValueError) as exc:
        if not allow_random:
            raise ZeroShotUnavailableError(
                f"{kind.value} weights {model_id!r} cannot be loaded ({exc}); download them to "
                "a local directory and point the model setting at it, or allow random weights "
                "(testing only)"
            ) from exc
        log.warning("%s %r: no pretrained weights (%s); using RANDOM weights", kind, model_id, exc)
    return _random_towers(kind, _config(kind, model_id)), WeightsStatus.RANDOM


def _random_towers(kind: ZeroShotKind, config: Any) -> Any:
    """`kind`'s towers in `config` with seeded random weights (the same in every process)."""
    from ml_platform.vision.embedders.torch_base import seeded_random_model

    model_cls, _ = _classes(kind)
    return seeded_random_model(lambda: model_cls(config))


def _random_towers_and_stand_in(kind: ZeroShotKind, model_id: str) -> tuple[Any, Any]:
    """Random towers and the stand-in tokenizer for their vocabulary (made first: a
    vocabulary it cannot serve fails before the towers are built)."""
    config = _config(kind, model_id)
    try:
        tokenizer = stand_in_tokenizer(int(config.text_config.vocab_size))
    except ValueError as exc:
        raise ZeroShotUnavailableError(f"no tokenizer for {model_id!r}: {exc}") from exc
    return _random_towers(kind, config), tokenizer


def _config(kind: ZeroShotKind, model_id: str) -> Any:
    """The checkpoint's configuration when its `config.json` can be read, else the
    architecture's default."""
    _, config_cls = _classes(kind)
    try:
        return config_cls.from_pretrained(model_id)
    except (OSError, ValueError):
        return config_cls()


def _load_tokenizer(model_id: str, allow_random: bool) -> Any | None:
    """The model's tokenizer; None when it cannot be loaded but random weights are allowed
    (the caller then builds random towers and the stand-in tokenizer)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = _with_vocabulary(AutoTokenizer.from_pretrained(model_id))
    except (OSError, ValueError) as exc:
        if allow_random:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("no tokenizer for %r (%s): RANDOM weights with the %s", model_id,
                        first_line, STAND_IN_NAME)  # fmt: skip
            return None
        raise ZeroShotUnavailableError(
            f"no tokenizer for {model_id!r} ({exc}); zero-shot needs the model's tokenizer "
            "files: download the model to a local directory and point the model setting at "
            "it, or allow random weights (ML_PLATFORM_ALLOW_RANDOM_WEIGHTS=1; testing only)"
        ) from exc
    if tokenizer.pad_token is None:
        raise ZeroShotUnavailableError(f"the tokenizer of {model_id!r} has no pad token")
    return tokenizer


def _with_vocabulary(tokenizer: Any) -> Any:
    """`tokenizer`, unless it knows only its special tokens (transformers builds such a CLIP
    tokenizer from a directory without tokenizer files): ValueError then."""
    if len(tokenizer.get_vocab()) <= len(set(tokenizer.all_special_tokens)):
        raise ValueError("no tokenizer files: its vocabulary holds only the special tokens")
    return tokenizer


def _load_processor(kind: ZeroShotKind, model_id: str, image_size: int) -> Any:
    """The checkpoint's PIL image processor, else the architecture's at `image_size`."""
    from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

    processor: Any = CLIPImageProcessorPil if kind is ZeroShotKind.CLIP else SiglipImageProcessorPil
    try:
        return processor.from_pretrained(model_id)
    except (OSError, ValueError):
        log.info("%r has no image processor config; using %s defaults", model_id, kind.value)
    if kind is ZeroShotKind.CLIP:
        return processor(size={"shortest_edge": image_size}, crop_size=image_size)
    return processor(size={"height": image_size, "width": image_size})
