"""Tiny randomly initialised CLIP and DINOv2 checkpoints as local model directories (the real
loading code, `from_pretrained` on a directory; only the size is not the real one). Used by
the `tiny_model_dirs` fixture and by benchmarks/serve_scale.py."""

from __future__ import annotations

from pathlib import Path

TINY_CLIP_DIM = 16
TINY_DINO_DIM = 24


def save_tiny_models(root: Path) -> dict[str, Path]:
    """Write `root/clip` and `root/dino`; their paths by name."""
    import torch
    from transformers import (
        BitImageProcessor,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        Dinov2Config,
        Dinov2Model,
    )

    torch.manual_seed(0)
    clip_config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        projection_dim=TINY_CLIP_DIM, image_size=224, patch_size=32,
    )  # fmt: skip
    CLIPVisionModelWithProjection(clip_config).save_pretrained(root / "clip")
    CLIPImageProcessor().save_pretrained(root / "clip")
    dino_config = Dinov2Config(
        hidden_size=TINY_DINO_DIM, mlp_ratio=2, num_hidden_layers=2, num_attention_heads=2,
        image_size=224, patch_size=14,
    )  # fmt: skip
    Dinov2Model(dino_config).save_pretrained(root / "dino")
    BitImageProcessor(
        size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(root / "dino")  # fmt: skip
    return {"clip": root / "clip", "dino": root / "dino"}
