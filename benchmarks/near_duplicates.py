"""How alike copies of one photo look to the CV grouping: embedding cosine against dHash.

For every pet photo in ../shared: a horizontal flip, 80 % and 60 % crops, a 1/3-size copy and
a brightened copy. Prints, per kind of copy, the EfficientNet-Lite0 cosine to the original
(raw L2-normalised embeddings, as `learning.folds.merge_near_duplicates` compares them) and
the 64-bit dHash Hamming distance, then the same figures for pairs of distinct photos and the
share of copies that `NEAR_DUPLICATE_COSINE` joins. Never asserts.

    python benchmarks/near_duplicates.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageOps
from shared_models import EFFICIENTNET_ONNX, SHARED, efficientnet_embedder

from ml_platform.learning.folds import NEAR_DUPLICATE_COSINE
from ml_platform.vision.decode import load_rgb


def crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    def cut(image: Image.Image) -> Image.Image:
        w, h = image.size
        cw, ch = int(w * fraction), int(h * fraction)
        left, top = (w - cw) // 3, (h - ch) // 3
        return image.crop((left, top, left + cw, top + ch))

    return cut


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "hflip": ImageOps.mirror,
    "crop 80%": crop(0.8),
    "crop 60%": crop(0.6),
    "1/3 size": lambda i: i.resize((i.width // 3, i.height // 3)),
    "bright x1.4": lambda i: ImageEnhance.Brightness(i).enhance(1.4),
}


def dhash(image: Image.Image) -> NDArray[np.bool_]:
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    return (grey[:, 1:] > grey[:, :-1]).ravel()


def main() -> None:
    pets = SHARED / "data" / "pets"
    paths = [p for d in sorted(pets.iterdir()) if d.is_dir() for p in sorted(d.glob("*.jpg"))]
    images = [load_rgb(p) for p in paths]
    hashes = np.array([dhash(i) for i in images])
    with tempfile.TemporaryDirectory() as scratch:
        embedder = efficientnet_embedder(EFFICIENTNET_ONNX, Path(scratch))

        def unit(batch: list[Image.Image]) -> NDArray[np.float64]:
            v = np.asarray(embedder.embed(batch), dtype=np.float64)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        X = unit(images)
        print(f"{len(paths)} photos; joined at cosine >= {NEAR_DUPLICATE_COSINE}")
        for name, make in COPIES.items():
            copies = [make(i) for i in images]
            cos = (unit(copies) * X).sum(axis=1)
            bits = np.array([(dhash(c) != h).sum() for c, h in zip(copies, hashes, strict=True)])
            print(
                f"{name:12s} cosine min {cos.min():.3f} median {np.median(cos):.3f}, joined "
                f"{(cos >= NEAR_DUPLICATE_COSINE).mean():.0%}; dHash bits median "
                f"{np.median(bits):.0f}, <= 10 bits {(bits <= 10).mean():.0%}"
            )
    sims = X @ X.T
    bits = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    pairs = np.triu_indices(len(paths), k=1)
    print(
        f"distinct photos: cosine max {sims[pairs].max():.3f} (joined "
        f"{(sims[pairs] >= NEAR_DUPLICATE_COSINE).mean():.2%} of pairs); dHash bits min "
        f"{bits[pairs].min()}"
    )


if __name__ == "__main__":
    main()
