"""``embed_clip_vit_b_32``: the projected image embedding of CLIP's vision tower (512-d)."""

from __future__ import annotations

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ml_platform.domain import BuiltinEmbeddingType
from ml_platform.vision.embedders.base import RANDOM_REVISION, EmbedderOptions
from ml_platform.vision.embedders.hub_embedding import HubEmbedding
from ml_platform.vision.embedders.onnx_direct import CLIP_SPEC
from ml_platform.vision.embedders.torch_base import TorchEmbedder, seeded_random_model
from ml_platform.vision.preprocess import CLIP_MEAN, CLIP_STD, PreprocessSpec

NAME = BuiltinEmbeddingType.CLIP_VIT_B_32.value
SETTING = "ML_PLATFORM_CLIP_MODEL"


def _image_embeds(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    output = model(pixel_values=pixels)
    embeds: torch.Tensor = output.image_embeds
    return embeds


CLIP = HubEmbedding(
    NAME,
    SETTING,
    _image_embeds,
    CLIP_SPEC,
    CLIPVisionModelWithProjection.from_pretrained,
    "projection_dim",
)


def load_clip(options: EmbedderOptions) -> TorchEmbedder:
    """Pretrained CLIP from ``options.clip_model``; random init only when allowed."""
    return CLIP.load(options.clip_model, options, random_clip)


def random_clip(options: EmbedderOptions, config: CLIPVisionConfig | None = None) -> TorchEmbedder:
    """The real architecture (ViT-B/32 by default, or ``config``) with seeded random weights."""
    if config is not None and not isinstance(config, CLIPVisionConfig):
        raise TypeError(f"{NAME} needs a CLIPVisionConfig, got {type(config).__name__}")
    config = config if config is not None else CLIPVisionConfig()
    model = seeded_random_model(lambda: CLIPVisionModelWithProjection(config))
    side = config.image_size
    if not isinstance(side, int):
        raise ValueError(f"{NAME}: image_size must be one int, got {side!r}")
    spec = PreprocessSpec.square(side, side, CLIP_MEAN, CLIP_STD)
    dim = CLIP.dim(config)
    return CLIP.wrap(model, options.clip_model, options, RANDOM_REVISION, spec, dim)
