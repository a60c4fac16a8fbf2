"""Image embedders by crawlr embedding type name.

Built-ins: ``embed_clip_vit_b_32`` (CLIP ViT-B/32 projected image embedding, 512-d) and
``embed_dino_v2`` (DINOv2 CLS token after the final layer norm, 384-d for ViT-S/14).
Custom ONNX types come from a YAML file (docs/embedding_types.md). Embeddings are raw
float32; use ``l2_normalize`` before cosine comparisons.
"""

from ml_platform.vision.embedders.base import (
    Embedder,
    EmbedderOptions,
    EmbedderUnavailableError,
    l2_normalize,
)
from ml_platform.vision.embedders.by_name import (
    EmbedderCache,
    build_embedder,
    build_random_embedder,
    custom_embedding_types,
    known_embedding_types,
)
from ml_platform.vision.embedders.custom_types import CustomEmbeddingType, load_custom_types

__all__ = [
    "CustomEmbeddingType",
    "Embedder",
    "EmbedderCache",
    "EmbedderOptions",
    "EmbedderUnavailableError",
    "build_embedder",
    "build_random_embedder",
    "custom_embedding_types",
    "known_embedding_types",
    "l2_normalize",
    "load_custom_types",
]
