"""`/v1/predict` on PyTorch vs its ONNX Runtime variant, in one run, over HTTP. Prints.

    python benchmarks/predict_throughput.py [--per-class 150] [--epochs 3] [--requests 64]

Fine-tunes EfficientNet-Lite0 (real ImageNet weights) on ../shared/data/clothing with the
cached-trunk recipe of benchmarks/finetune.py (split seed 0, the platform's own split), then
registers the same network twice in a temporary MLflow store: dataset `clothing-torch` as a
version was registered before ONNX variants existed (weights only: served in PyTorch), and
dataset `clothing` as registration does now (`onnx_export.export_variants`: fp32 ONNX and
static INT8, each drift-checked on the validation split; the fastest accepted is served). One
uvicorn server serves both champions. It prints each variant's drift check, then sends every
test photo (the JPEG file's bytes) to both datasets (the same top-1?), then interleaves blocks
of 8 concurrent requests on the two datasets (`--requests` each) and prints requests/s, p50,
p95 and the ratio. Never asserts.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import torch
from finetune import D, folder_images
from serve_helpers import ServerThread, free_port, report, run_interleaved
from shared_models import SHARED

from ml_platform.learning.finetune import FinetuneConfig, LabelledImages, build_model, finetune
from ml_platform.learning.finetune.onnx_export import Variants, export_variants
from ml_platform.learning.finetune.preprocessing import spec_to_json
from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel
from ml_platform.model_registry.dataset.register import finetune_run
from ml_platform.model_registry.versions import Alias
from ml_platform.services.dataset_versions import DatasetVersion, make_version
from ml_platform.services.datasets import Split, SplitFractions
from ml_platform.services.finetuning import dataset_input
from ml_platform.vision.decode import load_rgb

DATASETS = {"torch": "clothing-torch", "onnx": "clothing"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=None, help="at most this many photos a class")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--requests", type=int, default=64, help="requests per dataset at c=8")
    p.add_argument("--threads", type=int, default=1, help="torch threads while training only")
    return p.parse_args()


def load_splits(
    version: DatasetVersion, paths: dict[int, Path]
) -> dict[Split, tuple[LabelledImages, list[Path]]]:
    out = {}
    for s in Split:
        items = version.split(s)
        files = [paths[item.image_id] for item in items]
        labels = np.asarray([version.class_index(item.label) for item in items], np.int64)
        out[s] = LabelledImages([load_rgb(f) for f in files], labels), files
    return out


def register_both(
    uri: str, version: DatasetVersion, model: FinetunedClassifierModel, net: torch.nn.Module,
    variants: tuple[Variants, Path],
) -> None:  # fmt: skip
    """`clothing-torch`: weights only (served in torch); `clothing`: with its ONNX variants."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for how, dataset in DATASETS.items():
        with finetune_run(client, replace(dataset_input(version), name=dataset), {}, {}) as run:
            extra = variants[0].artifacts(variants[1]) if how == "onnx" else None
            registered = run.register(model, net.state_dict(), {}, extra)
        client.set_registered_model_alias(registered.name, Alias.CHAMPION.value, registered.version)


def caller(client: httpx.Client, dataset: str, files: list[Path]) -> Callable[[], None]:
    bodies = [{"dataset": dataset, "image_base64": base64.b64encode(f.read_bytes()).decode(),
               "top_k": 1} for f in files]  # fmt: skip
    counter = iter(range(10**9))

    def call() -> None:
        response = client.post("/v1/predict", json=bodies[next(counter) % len(bodies)])
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")

    return call


def top1(client: httpx.Client, dataset: str, files: list[Path], names: list[str]) -> list[int]:
    out = []
    for f in files:
        body = {"dataset": dataset, "image_base64": base64.b64encode(f.read_bytes()).decode(),
                "top_k": 1}  # fmt: skip
        reply = client.post("/v1/predict", json=body).json()
        out.append(names.index(reply["predictions"][0]["label"]))
    return out


def clothing(args: argparse.Namespace) -> tuple[DatasetVersion, dict[int, Path], FinetuneConfig]:
    images, spec, paths = folder_images(SHARED / "data" / "clothing", "clothing", args.per_class)
    version = make_version(spec, images, {}, SplitFractions())
    config = replace(D, epochs=args.epochs, seed=0)
    return version, paths, config


def main() -> None:
    args = parse_args()
    serving_threads = torch.get_num_threads()  # what the server's torch path gets by default
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    version, paths, config = clothing(args)
    splits = load_splits(version, paths)
    built = build_model(config, len(version.classes))
    result = finetune(built, splits[Split.TRAIN][0], splits[Split.VAL][0], config)
    print(f"fine-tuned {config.model_name} ({built.weights.identity}) on "
          f"{version.split_totals()}: kept epoch {result.best_epoch}, val loss "
          f"{result.val_loss:.4f}; {time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
    from ml_platform.serving import ServeOptions, create_app
    from ml_platform.settings import Settings

    torch.set_num_threads(serving_threads)

    with tempfile.TemporaryDirectory(prefix="predict-throughput-") as tmp:
        home = Path(tmp)
        (home / "onnx").mkdir()
        t0 = time.perf_counter()
        variants = export_variants(result.net, built.preprocess, splits[Split.VAL][0],
                                   splits[Split.TRAIN][0].images, home / "onnx")  # fmt: skip
        print(f"export and drift check {time.perf_counter() - t0:.0f}s; served: "
              f"{variants.served.value}\n{variants.record()}", flush=True)  # fmt: skip
        uri = f"sqlite:///{home / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        spec = spec_to_json(built.preprocess)
        model = FinetunedClassifierModel(built.architecture.to_json(), spec, version.classes)
        register_both(uri, version, model, result.net, (variants, home / "onnx"))
        app = create_app(Settings(home=home, mlflow_tracking_uri=uri), ServeOptions())
        server = ServerThread(app, free_port())
        server.start()
        try:
            measure(server.url, splits[Split.TEST], list(version.classes), args.requests)
        finally:
            server.stop()


def measure(
    url: str, test: tuple[LabelledImages, list[Path]], names: list[str], requests: int
) -> None:
    labels, files = test[0].labels, test[1]
    with httpx.Client(base_url=url, timeout=300.0, limits=httpx.Limits(max_connections=16)) as c:
        for how, dataset in DATASETS.items():
            variant = c.post("/v1/predict", json={"dataset": dataset, "image_base64":
                             base64.b64encode(files[0].read_bytes()).decode()}).json()  # fmt: skip
            print(f"{how}: {dataset} serves variant {variant['model_variant']}", flush=True)
        predicted = {how: top1(c, ds, files, names) for how, ds in DATASETS.items()}
        for how, p in predicted.items():
            print(f"test top-1 {how}: {float((np.asarray(p) == labels).mean()):.4f} "
                  f"({len(files)} photos)")  # fmt: skip
        same = float((np.asarray(predicted["torch"]) == np.asarray(predicted["onnx"])).mean())
        print(f"top-1 agreement torch vs served variant on test: {same:.4f}", flush=True)
        calls = {how: caller(c, ds, files) for how, ds in DATASETS.items()}
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        loads = run_interleaved(calls, requests, 8)
        figures = {how: report("predict", how, 8, loads[how]) for how in calls}
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(f"throughput x{figures['onnx']['rps'] / figures['torch']['rps']:.2f} at c=8 "
              f"(served variant / torch), p50 {figures['onnx']['p50']:.1f} vs "
              f"{figures['torch']['p50']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
