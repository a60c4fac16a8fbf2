"""Peer loops for benchmarks/embed_throughput.py: the plain code a user would write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ml_platform.vision.embedders import Embedder

Run = Callable[[], int]


def _processor(embedder: Embedder) -> object:
    from transformers import BitImageProcessorPil, CLIPImageProcessorPil

    spec = getattr(embedder, "spec")  # noqa: B009
    if embedder.name == "embed_clip_vit_b_32":
        return CLIPImageProcessorPil()
    return BitImageProcessorPil(
        size={"shortest_edge": spec.resize_short_side},
        crop_size={"height": spec.crop_height, "width": spec.crop_width},
        image_mean=list(spec.mean),
        image_std=list(spec.std),
    )


def plain_transformers_loop(embedder: Embedder, paths: list[Path], batch: int) -> Run:
    """PIL open, the transformers image processor, forward under no_grad, batch by batch."""
    import torch

    processor = _processor(embedder)
    model, forward = getattr(embedder, "model"), getattr(embedder, "forward")  # noqa: B009

    def run() -> int:
        count = 0
        for start in range(0, len(paths), batch):
            images = [Image.open(p).convert("RGB") for p in paths[start : start + batch]]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]  # type: ignore[operator]
            with torch.no_grad():
                count += len(forward(model, pixels))
        return count

    return run


def _pixels(path: Path, spec: object) -> np.ndarray:
    s = spec
    image = Image.open(path).convert("RGB")
    short = getattr(s, "resize_short_side") or getattr(s, "crop_height")  # noqa: B009
    scale = short / min(image.size)
    size = (max(short, round(image.width * scale)), max(short, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    height, width = getattr(s, "crop_height"), getattr(s, "crop_width")  # noqa: B009
    left, top = (image.width - width) // 2, (image.height - height) // 2
    crop = np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.float32)
    mean = np.asarray(getattr(s, "mean"), np.float32)  # noqa: B009
    std = np.asarray(getattr(s, "std"), np.float32)  # noqa: B009
    normalised: np.ndarray = ((crop * getattr(s, "rescale") - mean) / std).transpose(2, 0, 1)  # noqa: B009
    return normalised


def plain_ort_loop(embedder: Embedder, paths: list[Path], batch: int) -> Run:
    """onnxruntime with default options on ``embedder``'s model file; numpy preprocessing."""
    import onnxruntime as ort

    path = getattr(embedder, "path")  # noqa: B009
    spec = getattr(embedder, "spec")  # noqa: B009
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run() -> int:
        count = 0
        for start in range(0, len(paths), batch):
            pixels = np.stack([_pixels(p, spec) for p in paths[start : start + batch]])
            count += len(session.run(None, {name: pixels})[0])
        return count

    return run
