"""Embedding throughput: the platform on each backend vs plain peer loops, in one run. Prints.

    python benchmarks/embed_throughput.py [--models clip effnet dino] [--photos 48] [--rounds 2]

On the same JPEGs (../shared/data/pets), end to end from file to vectors:
- platform: `vision.pipeline.iter_embedded_batches` with the embedder on torch, onnx and
  onnx-int8 (model loading and the one-time ONNX export/quantisation are not timed;
  the export cache is kept in --cache so a rerun skips them);
- peer "transformers": a plain loop a user would write (PIL open, the transformers image
  processor, `model(pixel_values)` under `torch.no_grad`), on the same torch module;
- peer "ORT INT8": a plain onnxruntime loop (PIL open, resize, crop, numpy normalise,
  `session.run`) on the same INT8 file the platform chose.
CLIP ViT-B/32 and DINOv2-S use the real architectures with RANDOM weights (no hub access):
the same FLOPs as the real models, meaningless vectors. EfficientNet-Lite0 has real weights.
Paths are timed in alternating rounds so they share the background load; the best round
counts. The load average is printed before and after: on a shared machine read the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_peers import plain_ort_loop, plain_transformers_loop
from shared_models import SHARED, TYPES_YAML

from ml_platform.vision.embedders import (
    Embedder,
    EmbedderOptions,
    build_embedder,
    build_random_embedder,
)
from ml_platform.vision.pipeline import iter_embedded_batches

MODELS = {
    "clip": "embed_clip_vit_b_32",
    "dino": "embed_dino_v2",
    "effnet": "embed_efficientnet_lite0",
}
BACKENDS = ("torch", "onnx", "onnx-int8")
Run = Callable[[], int]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["clip", "effnet"])
    p.add_argument("--photos", type=int, default=48, help="photos per pass (0: all)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--int8-mode", default="auto", choices=["auto", "dynamic", "static"])
    p.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "ml-platform-bench-onnx"
    )
    return p.parse_args()


def embedder_for(key: str, backend: str, args: argparse.Namespace, scratch: Path) -> Embedder:
    pets = SHARED / "data" / "pets"
    common = {
        "backend": backend, "onnx_cache_dir": args.cache, "calibration_dir": pets,
        "int8_mode": args.int8_mode, "batch_size": args.batch,
    }  # fmt: skip
    if key != "effnet":
        return build_random_embedder(MODELS[key], options=EmbedderOptions(**common))  # type: ignore[arg-type]
    types = scratch / "types.yaml"
    onnx = SHARED / "models" / "efficientnet_lite0_features.onnx"
    types.write_text(TYPES_YAML.format(name=MODELS[key], onnx=onnx) + "    int8: auto\n")
    options = EmbedderOptions(custom_types_file=types, **common)  # type: ignore[arg-type]
    return build_embedder(MODELS[key], options)


def platform_run(embedder: Embedder, paths: list[Path]) -> Run:
    def run() -> int:
        return sum(len(part.items) for part in iter_embedded_batches(paths, embedder))

    return run


def timed(run: Run) -> float:
    start = time.perf_counter()
    count = run()
    return count / (time.perf_counter() - start)


def measure(runs: dict[str, Run], rounds: int) -> dict[str, float]:
    """Best images/s of each path over ``rounds`` alternating rounds, after a warm-up."""
    for run in runs.values():
        run()
    rates: dict[str, list[float]] = {label: [] for label in runs}
    for index in range(rounds):
        order = list(runs) if index % 2 == 0 else list(reversed(runs))
        for label in order:
            rates[label].append(timed(runs[label]))
    return {label: max(values) for label, values in rates.items()}


def build_runs(
    key: str, args: argparse.Namespace, paths: list[Path], scratch: Path
) -> dict[str, Run]:
    runs: dict[str, Run] = {}
    embedders: dict[str, Embedder] = {}
    for backend in BACKENDS if key != "effnet" else ("onnx", "onnx-int8"):
        started = time.perf_counter()
        embedder = embedder_for(key, backend, args, scratch)
        took = time.perf_counter() - started
        actual = getattr(embedder, "backend", backend)
        print(f"  {backend:<10} -> {embedder.revision} ({actual}), built in {took:.1f} s")
        embedders[str(getattr(actual, "value", actual))] = embedder
        runs[f"platform {actual}"] = platform_run(embedder, paths)
    torch_embedder = embedders.get("torch")
    if torch_embedder is not None:
        runs["peer transformers"] = plain_transformers_loop(torch_embedder, paths, args.batch)
    int8 = embedders.get("onnx-int8")
    if int8 is not None:
        runs["peer ORT INT8"] = plain_ort_loop(int8, paths, args.batch)
    return runs


def report(key: str, rates: dict[str, float]) -> None:
    for label, rate in rates.items():
        print(f"  {label:<22} {rate:8.1f} img/s")
    platform = {
        k.removeprefix("platform "): v for k, v in rates.items() if k.startswith("platform")
    }
    fastest = max(platform, key=lambda k: platform[k])
    pairs = [("peer ORT INT8", fastest), ("peer transformers", "torch")]
    for peer, ours in pairs:
        if peer in rates and ours in platform:
            print(f"  ratio platform {ours} / {peer}: {platform[ours] / rates[peer]:.2f}x")


def main() -> None:
    args = parse_args()
    pets = sorted((SHARED / "data" / "pets").rglob("*.jpg"))
    paths = pets[: args.photos] if args.photos else pets
    import torch

    print(
        f"{len(paths)} photos from {SHARED / 'data' / 'pets'}; cpus {os.cpu_count()}, torch "
        f"threads {torch.get_num_threads()}; load average {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for key in args.models:
            weights = (
                "real weights" if key == "effnet" else "RANDOM weights, full-size architecture"
            )
            print(f"\n{MODELS[key]} ({weights})")
            runs = build_runs(key, args, paths, Path(scratch))
            report(key, measure(runs, args.rounds))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
