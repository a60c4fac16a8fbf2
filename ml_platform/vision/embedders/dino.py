"""``embed_dino_v2``: DINOv2's CLS token after the final layer norm (384-d for ViT-S/14)."""

from __future__ import annotations

import torch
from transformers import Dinov2Config, Dinov2Model

from ml_platform.domain import BuiltinEmbeddingType
from ml_platform.vision.embedders.base import RANDOM_REVISION, EmbedderOptions
from ml_platform.vision.embedders.hub_embedding import HubEmbedding
from ml_platform.vision.embedders.onnx_direct import DINO_SPEC
from ml_platform.vision.embedders.torch_base import TorchEmbedder, seeded_random_model

NAME = BuiltinEmbeddingType.DINO_V2.value
SETTING = "ML_PLATFORM_DINO_MODEL"
# (hidden_size, num_attention_heads, num_hidden_layers, use_swiglu_ffn) of the hub variants.
VARIANTS: dict[str, tuple[int, int, int, bool]] = {
    "small": (384, 6, 12, False),
    "base": (768, 12, 12, False),
    "large": (1024, 16, 24, False),
    "giant": (1536, 24, 40, True),
}


def variant_config(model_id: str) -> Dinov2Config:
    """The hub config of the variant named in ``model_id`` (ViT-S/14 when none is named)."""
    lowered = model_id.lower()
    variant = next((v for v in ("giant", "large", "base") if v in lowered), "small")
    hidden, heads, layers, swiglu = VARIANTS[variant]
    return Dinov2Config(
        hidden_size=hidden,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        use_swiglu_ffn=swiglu,
        image_size=518,
        patch_size=14,
        layerscale_value=1.0,
    )


def _cls_token(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    output = model(pixel_values=pixels)
    pooled: torch.Tensor = output.pooler_output  # last_hidden_state[:, 0] after layernorm
    return pooled


DINO = HubEmbedding(
    NAME, SETTING, _cls_token, DINO_SPEC, Dinov2Model.from_pretrained, "hidden_size"
)


def load_dino(options: EmbedderOptions) -> TorchEmbedder:
    """Pretrained DINOv2 from ``options.dino_model``; random init only when allowed."""
    return DINO.load(options.dino_model, options, random_dino)


def random_dino(options: EmbedderOptions, config: Dinov2Config | None = None) -> TorchEmbedder:
    """The real architecture (variant of ``options.dino_model``, or ``config``), random weights.

    Inputs stay 224 px whatever ``config.image_size``: DINOv2 interpolates its position
    embeddings, as the pretrained checkpoints (image_size 518) do at 224 px.
    """
    if config is not None and not isinstance(config, Dinov2Config):
        raise TypeError(f"{NAME} needs a Dinov2Config, got {type(config).__name__}")
    config = config if config is not None else variant_config(options.dino_model)
    model = seeded_random_model(lambda: Dinov2Model(config))
    dim = DINO.dim(config)
    return DINO.wrap(model, options.dino_model, options, RANDOM_REVISION, DINO_SPEC, dim)
