"""Serving latency: the real server over HTTP vs the same work called in-process.

Starts uvicorn on 127.0.0.1 (a thread) with a temporary home and a temporary MLflow sqlite
store holding two classifiers: collection 1, CLIP ViT-B/32 on the whole image, and
collection 2, DINOv2-small on the prominent face. The embedders are the real architectures
with RANDOM weights (no hub access here), so probabilities are meaningless; the work per
request is the real one. Sends classify requests (CLIP, DINO face, both in one request) at
concurrency 1 and 8 with httpx, interleaved block by block with the same operations run
in-process (no HTTP, same inference thread) so both see the same background load, and prints
p50/p95/p99 latency, requests/s and the HTTP/in-process ratio. Prints; never asserts.

    python benchmarks/serve_latency.py [--requests 16] [--servers torch:1 auto:16]

Each `--servers` entry BACKEND:BATCH_MAX is a fresh server whose classifiers were trained on
that backend (batch max 1: no dynamic batching, one forward pass per request; >1: concurrent
requests share forward passes). The first is the peer: by default the configuration before
issue 12 (torch, batching off) against the default now (fastest backend, batching on); the
end prints every other server's c=8 throughput and p95 as ratios to the peer's.
Cold start: the first request of each scenario after `/readyz` turns 200 (CLIP first; the
preload has loaded and run every model). `--cold-only` measures only that.
The ONNX export cache is kept in --onnx-cache (linked into each temporary home), so only
the first run ever exports.

The face photo comes from $ML_PLATFORM_SHARED_DIR/data/faces (default ../shared), else a
generated image (the DINO face collection then reports "no face detected" quickly).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from serve_helpers import (
    Served,
    ServerThread,
    compare,
    free_port,
    report,
    run_interleaved,
    server_config,
)

REPO = Path(__file__).resolve().parents[1]
SCENARIOS: dict[str, list[dict[str, object]]] = {
    "clip_whole_image": [{"type": "classify", "collection_id": 1}],
    "dino_face": [{"type": "classify", "collection_id": 2}],
    "both": [{"type": "classify", "collection_id": 1}, {"type": "classify", "collection_id": 2}],
}


def shared_dir() -> Path:
    return Path(os.environ.get("ML_PLATFORM_SHARED_DIR", REPO.parent / "shared")).resolve()


def photo_bytes() -> tuple[bytes, str]:
    """A face photo scaled to 640 px on its long side, or a generated image."""
    path = shared_dir() / "data" / "faces" / "img1.jpg"
    if path.is_file():
        image = Image.open(path).convert("RGB")
        label = f"{path.name} (640 px)"
    else:
        pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
        image, label = Image.fromarray(pixels), "generated noise 640x480 (no face)"
    image.thumbnail((640, 640))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), label


def register(uri: str, artifacts: Path, backend: str) -> None:
    """Collection 1: CLIP whole image (512-d); collection 2: DINOv2 face (384-d); both
    trained (as it were) on `backend` embeddings (auto: onnx-int8, the CPU default)."""
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from ml_platform.model_registry.collection.naming import VersionTag
    from ml_platform.model_registry.collection.register import (
        ClassifierPayload,
        log_and_register,
        promote,
    )

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    chosen = "onnx-int8" if backend == "auto" else backend
    revision = "random-init" if chosen == "torch" else f"random-init+{chosen}"
    specs = [
        (1, "whole_image", "embed_clip_vit_b_32", 512),
        (2, "prominent_face", "embed_dino_v2", 384),
    ]
    for collection_id, derivative, embedding_type, dim in specs:
        features = np.random.default_rng(collection_id).normal(size=(64, dim))
        estimator = LogisticRegression().fit(features, np.arange(64) % 2)
        tags: dict[str, str] = {
            VersionTag.COLLECTION_ID: str(collection_id),
            VersionTag.DERIVATIVE_TYPE: derivative,
            VersionTag.EMBEDDING_TYPE: embedding_type,
            VersionTag.DIMENSIONALITY: str(dim),
            VersionTag.THRESHOLD: "0.5",
            VersionTag.WEIGHTS: "random",
            VersionTag.EMBEDDER_REVISION: revision,
        }
        payload = ClassifierPayload(estimator, 0.5, dim, collection_id, tags, {}, {})
        version = log_and_register(client, payload, artifact_location=str(artifacts)).version
        promote(client, collection_id, version, "benchmark")


def http_call(client: httpx.Client, body: dict[str, object]) -> Callable[[], None]:
    def call() -> None:
        response = client.post("/v1/analyze", json=body)
        if response.status_code not in (200, 422):  # 422: no face in a generated image
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")

    return call


def in_process_call(state: Any, data: bytes, operations: list[Any]) -> Callable[[], None]:
    """One request's work without HTTP: the same functions, on the same inference threads."""
    from ml_platform.serving.analysis import ImageAnalysis, StageClock
    from ml_platform.serving.images import decode
    from ml_platform.serving.operations import resolve_champions, run_operations

    def work(champions: Any, clock: StageClock) -> None:
        raw = base64.b64decode(base64.b64encode(data))  # the same base64 round trip as JSON
        image = decode(raw, state.decode).image
        analysis = ImageAnalysis(image, state.models, clock)
        outcomes = run_operations(operations, analysis, champions, state.metrics)
        failed = [o.error for o in outcomes if o.error is not None]
        if any(error.kind != "no_detection" for error in failed):
            raise RuntimeError("; ".join(error.message for error in failed))

    def call() -> None:
        clock = StageClock()
        champions = resolve_champions(operations, state.champions, clock)
        state.inference.submit(work, champions, clock).result()

    return call


def benchmark(args: argparse.Namespace) -> None:
    data, label = photo_bytes()
    print(f"image: {label}; servers: {' '.join(args.servers)}; load {os.getloadavg()[0]:.2f}")
    print("weights: RANDOM (CLIP ViT-B/32 and DINOv2-small architectures, no pretrained weights)")
    print(f"torch threads: {__import__('torch').get_num_threads()}, cpus: {os.cpu_count()}")
    print("servers (backend:serve_batch_max), blocks interleaved across them\n")
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(one_server(args, data, s)) for s in args.servers]
        c8 = (
            {}
            if args.cold_only
            else run_all(servers, data, args.requests, args.scenarios, args.local)
        )
    compare(servers, c8)


@contextlib.contextmanager
def one_server(args: argparse.Namespace, data: bytes, config: str) -> Iterator[Served]:
    from ml_platform.serving import ServeOptions, create_app
    from ml_platform.settings import Settings

    backend, batch_max = config.split(":")[0], int(config.split(":")[1])
    yunet = shared_dir() / "models" / "face_detection_yunet_2023mar.onnx"
    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        home = Path(tmp)
        (home / "models").mkdir()
        args.onnx_cache.mkdir(parents=True, exist_ok=True)
        (home / "models" / "onnx").symlink_to(args.onnx_cache.resolve())
        uri = f"sqlite:///{home / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri  # log_and_register resolves sources with it
        register(uri, home / "artifacts", backend)
        settings = Settings(
            home=home,
            mlflow_tracking_uri=uri,
            allow_random_weights=True,
            yunet_model=yunet if yunet.is_file() else None,
            embed_backend=backend,
            serve_batch_max=batch_max,
        )
        app = create_app(settings, ServeOptions(refresh_interval_s=30.0))
        server = ServerThread(app, free_port())
        server.start()
        try:
            served = Served(backend, int(batch_max), server.url, app.state.serving)
            served.cold_s = cold_start(server.url, data)
            print(f"{served.label}: first requests after /readyz 200: {served.cold_text()}")
            yield served
        finally:
            server.stop()
            app.state.serving.models.close()


def cold_start(url: str, data: bytes) -> dict[str, float]:
    """Seconds of the first request of each scenario once /readyz says 200 (CLIP first)."""
    with httpx.Client(base_url=url, timeout=300.0) as client:
        deadline = time.monotonic() + 600
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = {}
        for name, operations in SCENARIOS.items():
            body: dict[str, object] = {
                "image_base64": base64.b64encode(data).decode("ascii"),
                "operations": operations,
            }
            start = time.perf_counter()
            http_call(client, body)()
            seconds[name] = time.perf_counter() - start
        return seconds


def run_all(
    servers: list[Served], data: bytes, requests: int, scenarios: list[str], local: bool
) -> dict[str, dict[str, dict[str, float]]]:
    from pydantic import TypeAdapter

    from ml_platform.serving.schemas import Operation

    adapter: Any = TypeAdapter(list[Operation])
    encoded = base64.b64encode(data).decode("ascii")
    limits = httpx.Limits(max_connections=16)
    clients = [httpx.Client(base_url=s.url, timeout=120.0, limits=limits) for s in servers]
    c8: dict[str, dict[str, dict[str, float]]] = {}
    overheads = []
    try:
        for client in clients:
            for operations in SCENARIOS.values():  # warm up: every model and path once
                http_call(client, {"image_base64": encoded, "operations": operations})()
        for name in scenarios:
            operations = SCENARIOS[name]
            body: dict[str, object] = {"image_base64": encoded, "operations": operations}
            parsed = adapter.validate_python(operations)
            calls: dict[str, Callable[[], None]] = {}
            for served, client in zip(servers, clients, strict=True):
                calls[f"http {served.label}"] = http_call(client, body)
                if local:
                    calls[f"local {served.label}"] = in_process_call(served.state, data, parsed)
            for concurrency in (1, 8):
                count = requests if concurrency == 1 else 2 * requests
                loads = run_interleaved(calls, count, concurrency)
                figures = {how: report(name, how, concurrency, loads[how]) for how in calls}
                for served in servers:
                    http = figures[f"http {served.label}"]
                    if concurrency == 8:
                        c8.setdefault(name, {})[served.label] = http
                    if not local:
                        continue
                    inside = figures[f"local {served.label}"]
                    p50, rps = http["p50"] / inside["p50"], http["rps"] / inside["rps"]
                    overheads.append(
                        f"  {name:<17} {served.label:<5} c={concurrency:<2} "
                        f"p50 x{p50:5.2f}  req/s x{rps:5.2f}"
                    )
    finally:
        for client in clients:
            client.close()
    print("\nHTTP + framework overhead (http / in-process):")
    print("\n".join(overheads))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return c8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=16, help="requests at concurrency 1")
    parser.add_argument(
        "--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS)
    )
    parser.add_argument(
        "--servers", nargs="+", type=server_config, default=["torch:1", "auto:16"],
        help="BACKEND:BATCH_MAX per server; the first is the peer",
    )  # fmt: skip
    parser.add_argument(
        "--no-local", dest="local", action="store_false", help="skip the in-process runs"
    )
    parser.add_argument("--cold-only", action="store_true", help="only the cold starts")
    parser.add_argument(
        "--onnx-cache", type=Path, default=Path(tempfile.gettempdir()) / "ml-platform-bench-onnx"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail fast to random weights, no hub calls
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    benchmark(args)


if __name__ == "__main__":
    main()
