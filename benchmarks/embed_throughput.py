"""Embedding throughput on this machine: sgemm, model-only and end to end. Prints; never asserts.

    python benchmarks/embed_throughput.py [--shared ../shared] [--batch 32] [--repeats 3]

1. sgemm GFLOP/s: a large float32 matmul on all cores (the machine's practical ceiling).
2. Model-only images/s of CLIP ViT-B/32 and DINOv2 ViT-S/14 (real architectures, random
   weights, 224 px, one batch of preprocessed pixels), and the share of the FLOP floor:
   floor images/s = measured GFLOP/s / GFLOP per image (8.8 and 12.3).
3. End to end on the photos in ../shared/data, whole_image derivative: JPEG draft decode,
   detection (YuNet + HOG), crop, preprocess, embed, append to a parquet file, with decode
   and preprocessing of the next batch overlapped with inference
   (ml_platform.vision.pipeline). Also without the detection step, which the platform runs
   once per image in its own asset and stores.

Every rate is given twice: by wall-clock time, and by process CPU time
(``work * threads / cpu_seconds``), which estimates the uncontended rate when other
processes share the cores (the load average is printed before and after).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import Detector
from ml_platform.vision.embedders import Embedder, EmbedderOptions, build_random_embedder
from ml_platform.vision.pipeline import draft_size_for, iter_embedded_batches

GFLOP_PER_IMAGE = {"embed_clip_vit_b_32": 8.8, "embed_dino_v2": 12.3}
LABELS = {"embed_clip_vit_b_32": "CLIP ViT-B/32", "embed_dino_v2": "DINOv2 ViT-S/14"}


@dataclass(frozen=True)
class Rate:
    """Work per second by wall clock, and by CPU time spread over the torch threads."""

    wall: float
    cpu: float

    @classmethod
    def of(cls, work: float, wall_s: float, cpu_s: float) -> Rate:
        return cls(work / wall_s, work * torch.get_num_threads() / cpu_s)

    def __str__(self) -> str:
        return f"{self.wall:7.2f} wall ({self.cpu:7.2f} by CPU time)"


def timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def best_rate(work: float, run: Callable[[], object], repeats: int) -> Rate:
    """The best of ``repeats`` timed runs after one warm-up (least disturbed by neighbours)."""
    run()
    times = [timed(run) for _ in range(repeats)]
    return Rate(max(work / w for w, _ in times), max(Rate.of(work, w, c).cpu for w, c in times))


def sgemm_gflops(size: int = 4096, repeats: int = 5) -> Rate:
    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.inference_mode():
        return best_rate(2 * size**3 / 1e9, lambda: a @ b, repeats)


def model_only(embedder: Embedder, batch: int, repeats: int) -> Rate:
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
    return best_rate(batch, lambda: embedder.embed_preprocessed(pixels), repeats)


def whole_image_loader(
    embedder: Embedder, detector: Detector | None
) -> Callable[[Path], Image.Image | None]:
    draft = draft_size_for(embedder)

    def load(path: Path) -> Image.Image | None:
        image = load_rgb(path, draft_size=draft)
        if detector is None:
            return image
        return crop_for(image, DerivativeType.WHOLE_IMAGE, detector.detect(image))

    return load


def embed_to_parquet(
    embedder: Embedder, paths: list[Path], detector: Detector | None, batch: int, out: Path
) -> None:
    schema = pa.schema([("path", pa.string()), ("vector", pa.list_(pa.float32(), embedder.dim))])
    with pq.ParquetWriter(out, schema) as writer:
        load = whole_image_loader(embedder, detector)
        for part in iter_embedded_batches(paths, embedder, load=load, batch_size=batch):
            vectors = pa.FixedSizeListArray.from_arrays(part.vectors.ravel(), embedder.dim)
            names = pa.array([str(p) for p in part.items])
            writer.write_table(pa.Table.from_arrays([names, vectors], schema=schema))


def end_to_end(
    embedder: Embedder, paths: list[Path], detector: Detector | None, batch: int, out: Path
) -> Rate:
    """Images/s from paths to rows in a parquet file."""
    wall, cpu = timed(lambda: embed_to_parquet(embedder, paths, detector, batch, out))
    return Rate.of(len(paths), wall, cpu)


def photos(shared: Path) -> list[Path]:
    return sorted((shared / "data").rglob("*.jpg"))


def make_detector(shared: Path) -> Detector:
    yunet = shared / "models" / "face_detection_yunet_2023mar.onnx"
    detector = Detector(yunet_model=yunet if yunet.is_file() else None, person_onnx=None)
    detector.detect(Image.new("RGB", (320, 240)))  # load the models before timing
    return detector


def report_model(name: str, gflops: Rate, args: argparse.Namespace) -> tuple[Embedder, Rate]:
    embedder = build_random_embedder(name, options=EmbedderOptions(batch_size=args.batch))
    rate = model_only(embedder, args.batch, args.repeats)
    per_image = GFLOP_PER_IMAGE[name]
    floor = Rate(gflops.wall / per_image, gflops.cpu / per_image)
    print(f"{LABELS[name]}, batch {args.batch}, random weights")
    print(f"  model-only img/s   {rate}")
    print(f"  FLOP floor img/s   {floor}  ({per_image} GFLOP/img)")
    share = f"{rate.wall / floor.wall:7.0%} wall ({rate.cpu / floor.cpu:7.0%} by CPU time)"
    print(f"  share of floor     {share}")
    return embedder, rate


def report_end_to_end(
    embedder: Embedder, rate: Rate, paths: list[Path], detector: Detector, batch: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, det in (("with detection", detector), ("detections stored", None)):
            e2e = end_to_end(embedder, paths, det, batch, Path(tmp) / "embeddings.parquet")
            print(f"  end-to-end img/s   {e2e}  whole_image {label}, {len(paths)} photos")
            print(
                f"  e2e / model-only   {e2e.wall / rate.wall:7.2f} wall "
                f"({e2e.cpu / rate.cpu:7.2f} by CPU time)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(__file__).resolve().parents[1].parent / "shared"
    parser.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("ML_PLATFORM_SHARED_DIR", default_shared)),
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()}")
    gflops = sgemm_gflops()
    print(f"sgemm 4096^3 float32 GFLOP/s {gflops}")
    paths = photos(args.shared) if (args.shared / "data").is_dir() else []
    detector = make_detector(args.shared) if paths else None
    for name in GFLOP_PER_IMAGE:
        embedder, rate = report_model(name, gflops, args)
        if detector is None:
            print(f"  end-to-end skipped: no photos under {args.shared}/data")
            continue
        report_end_to_end(embedder, rate, paths, detector, args.batch)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
