"""Serving latency: the real server over HTTP vs the same work called in-process.

Starts uvicorn on 127.0.0.1 (a thread) with a temporary home and a temporary MLflow sqlite
store holding two classifiers: collection 1, CLIP ViT-B/32 on the whole image, and
collection 2, DINOv2-small on the prominent face. The embedders are the real architectures
with RANDOM weights (no hub access here), so probabilities are meaningless; the work per
request is the real one. Sends classify requests (CLIP, DINO face, both in one request) at
concurrency 1 and 8 with httpx, interleaved block by block with the same operations run
in-process (no HTTP, same inference thread) so both see the same background load, and prints
p50/p95/p99 latency, requests/s and the HTTP/in-process ratio. Prints; never asserts.

    python benchmarks/serve_latency.py [--requests 16]

The face photo comes from $ML_PLATFORM_SHARED_DIR/data/faces (default ../shared), else a
generated image (the DINO face collection then reports "no face detected" quickly).
"""

from __future__ import annotations

import argparse
import base64
import io
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

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


def register(uri: str, artifacts: Path) -> None:
    """Collection 1: CLIP whole image (512-d); collection 2: DINOv2 face (384-d)."""
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from ml_platform.model_registry.aliases import promote
    from ml_platform.model_registry.naming import VersionTag
    from ml_platform.model_registry.registry import ClassifierPayload, log_and_register

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
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
        }
        payload = ClassifierPayload(estimator, 0.5, dim, collection_id, tags, {}, {})
        version = log_and_register(client, payload, artifact_location=str(artifacts)).version
        promote(client, collection_id, version, "benchmark")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread until `stop()`."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}


@dataclass
class Load:
    """Latencies and busy wall time of one way of calling, accumulated over blocks."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0


def run_block(
    call: Callable[[], None], requests: int, pool: ThreadPoolExecutor, load: Load
) -> None:
    def timed(_: int) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    start = time.perf_counter()
    load.latencies.extend(pool.map(timed, range(requests)))
    load.wall += time.perf_counter() - start


def run_interleaved(
    calls: dict[str, Callable[[], None]], requests: int, concurrency: int
) -> dict[str, Load]:
    """`requests` calls per way, in alternating blocks of `concurrency` concurrent calls.

    Alternating keeps both ways under the same background load on a shared machine.
    """
    loads = {how: Load() for how in calls}
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(max(1, requests // concurrency)):
            for how, call in calls.items():
                run_block(call, concurrency, pool, loads[how])
    return loads


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

    settings = state.settings

    def work(champions: Any, clock: StageClock) -> None:
        raw = base64.b64decode(base64.b64encode(data))  # the same base64 round trip as JSON
        image = decode(
            raw, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )
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


def report(name: str, how: str, concurrency: int, load: Load) -> dict[str, float]:
    figures = percentiles(load.latencies)
    rps = len(load.latencies) / load.wall
    print(
        f"{name:<17} {how:<10} c={concurrency:<2} n={len(load.latencies):<3} "
        f"p50={figures['p50']:7.1f} ms  p95={figures['p95']:7.1f} ms  "
        f"p99={figures['p99']:7.1f} ms  {rps:6.2f} req/s"
    )
    return {**figures, "rps": rps}


def benchmark(requests: int, scenarios: list[str]) -> None:
    from pydantic import TypeAdapter

    from ml_platform.serving import ServeOptions, create_app
    from ml_platform.serving.schemas import Operation
    from ml_platform.settings import Settings

    data, label = photo_bytes()
    yunet = shared_dir() / "models" / "face_detection_yunet_2023mar.onnx"
    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        home = Path(tmp)
        uri = f"sqlite:///{home / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri  # log_and_register resolves sources with it
        register(uri, home / "artifacts")
        settings = Settings(
            home=home,
            mlflow_tracking_uri=uri,
            allow_random_weights=True,
            yunet_model=yunet if yunet.is_file() else None,
        )
        app = create_app(settings, ServeOptions(refresh_interval_s=30.0))
        server = ServerThread(app, free_port())
        server.start()
        print(f"image: {label}; face detector: {'yunet' if settings.yunet_model else 'haar'}")
        print(
            "weights: RANDOM (CLIP ViT-B/32 and DINOv2-small architectures, no pretrained weights)"
        )
        print(f"torch threads: {__import__('torch').get_num_threads()}, cpus: {os.cpu_count()}")
        print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
        try:
            adapter = TypeAdapter(list[Operation])
            run_all(server.url, app.state.serving, data, requests, adapter, scenarios)
        finally:
            server.stop()


def run_all(
    url: str, state: Any, data: bytes, requests: int, adapter: Any, scenarios: list[str]
) -> None:
    encoded = base64.b64encode(data).decode("ascii")
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=url, timeout=120.0, limits=limits) as client:
        for operations in SCENARIOS.values():  # warm up: load every model once
            http_call(client, {"image_base64": encoded, "operations": operations})()
        both = {"image_base64": encoded, "operations": SCENARIOS["both"]}
        timings = client.post("/v1/analyze", json=both).json()["timings_ms"]
        print(f"one 'both' request, server-side stages (ms): {timings}\n")
        overheads = []
        for name in scenarios:
            operations = SCENARIOS[name]
            body: dict[str, object] = {"image_base64": encoded, "operations": operations}
            calls = {
                "http": http_call(client, body),
                "in-process": in_process_call(state, data, adapter.validate_python(operations)),
            }
            for concurrency in (1, 8):
                count = requests if concurrency == 1 else 2 * requests
                loads = run_interleaved(calls, count, concurrency)
                http, local = (report(name, how, concurrency, loads[how]) for how in calls)
                p50, rps = http["p50"] / local["p50"], http["rps"] / local["rps"]
                overheads.append(
                    f"  {name:<17} c={concurrency:<2} p50 x{p50:5.2f}  req/s x{rps:5.2f}"
                )
    print("\nHTTP + framework overhead (http / in-process):")
    print("\n".join(overheads))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=16, help="requests at concurrency 1")
    parser.add_argument(
        "--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS)
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail fast to random weights, no hub calls
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    benchmark(args.requests, args.scenarios)


if __name__ == "__main__":
    main()
