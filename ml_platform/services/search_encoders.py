"""Turning a text or a collection's champion into a query vector for search.

Text: the CLIP text tower of the focus's embedding type (the only built-in image embedder
with one is CLIP; its text features share the image features' space). A champion: the
direction its linear classifier separates members along (coefficients over any scaling
steps before it), None for a classifier that has no single direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_platform.domain import BuiltinEmbeddingType, Focus
from ml_platform.learning.ann_index import FloatArray
from ml_platform.services.search import SearchError

# embedding type -> the zero-shot family whose text tower shares its space
TEXT_TOWERS = {BuiltinEmbeddingType.CLIP_VIT_B_32.value: "clip"}


def text_tower_of(focus: Focus) -> str:
    """The zero-shot family to embed text for `focus`; a SearchError (422) naming it if none."""
    kind = TEXT_TOWERS.get(focus.embedding_type)
    if kind is None:
        raise SearchError(
            f"focus {focus.key} has no text tower: text search needs a focus embedded with "
            f"{', '.join(sorted(TEXT_TOWERS))}; search {focus.key} by image, image_id or "
            "collection_id, or pass such a focus"
        )
    return kind


def text_features(model: Any, tokenizer: Any, text: str, device: str = "cpu") -> FloatArray:
    """A CLIP model's projected text features of `text`, float32 [1, d]."""
    import torch

    max_length = int(model.config.text_config.max_position_embeddings)
    encoded = tokenizer(
        [text], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        features = model.get_text_features(
            input_ids=encoded["input_ids"].to(device),
            attention_mask=encoded["attention_mask"].to(device),
        )
    if not isinstance(features, torch.Tensor):  # newer transformers return an output object
        features = features.pooler_output
    return np.asarray(features.float().cpu().numpy(), np.float32).reshape(1, -1)


def linear_direction(estimator: object) -> FloatArray | None:
    """The input-space direction a fitted linear classifier (or a pipeline of scalers ending
    in one) scores along: coef / scale; None when the estimator is not linear."""
    steps = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    coef = getattr(steps[-1], "coef_", None)
    if coef is None or np.atleast_2d(coef).shape[0] != 1:
        return None
    direction = np.atleast_2d(np.asarray(coef, np.float64))
    for step in steps[:-1]:
        scale = getattr(step, "scale_", None)
        if scale is None:
            return None  # a step that is not a per-feature scaling: no single direction
        direction = direction / np.where(np.asarray(scale) == 0, 1.0, scale)
    if not np.all(np.isfinite(direction)) or not np.any(direction):
        return None
    return direction.astype(np.float32)
