"""Serving at scale: a registry of N collection champions on two foci + D dataset models.

Builds the registry (benchmarks/serve_scale_registry.py) and tiny local CLIP/DINOv2
checkpoints (the real loading code; embedding cost is not what is measured here), then starts
`ml-platform serve` as a subprocess and reports:

- time from process start to `/readyz` 200, what `/readyz` says is known and loaded, and the
  server's RSS;
- p50/p95 of one `/v1/analyze` request classifying 1, 10 or 50 collections, warm (loaded) and
  after eviction (groups of collections cycled through until together they exceed the model
  memory budget, so each group was unloaded by the others before it is asked again);
- tracing on (OTLP/HTTP to a real receiver in this process) vs off at concurrency 8, two
  servers measured in interleaved blocks, and one traced request's spans.

    python benchmarks/serve_scale.py [--collections 10000] [--datasets 20] [--budget-mb 16]
        [--tracing-only]  # the tracing table alone, both servers fresh (no eviction run before)

Prints; never asserts.
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from serve_helpers import free_port, percentiles
from serve_scale_registry import build_registry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.otlp_receiver import ReceivedSpan, Receiver, receiving  # noqa: E402
from tests.tiny_models import save_tiny_models  # noqa: E402

SIZES = (1, 10, 50)


def photo() -> str:
    pixels = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Server:
    """`ml-platform serve` in a subprocess on its own home, over the shared registry."""

    def __init__(self, root: Path, uri: str, models: dict[str, Path], env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home = root / f"home-{self.port}"
        home.mkdir()
        self.env = {**os.environ, "ML_PLATFORM_MLFLOW_TRACKING_URI": uri, "HF_HUB_OFFLINE": "1",
                    "ML_PLATFORM_CLIP_MODEL": str(models["clip"]),
                    "ML_PLATFORM_DINO_MODEL": str(models["dino"]),
                    "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS": "true", **env}  # fmt: skip
        self.command = [sys.executable, "-m", "ml_platform.cli", "-v", "serve", "--home",
                        str(home), "--port", str(self.port)]  # fmt: skip

    def start(self) -> tuple[float, float]:
        """Seconds from process start to /healthz 200 (imports, app built) and to /readyz
        200 (the champion index and the preload done)."""
        start = time.perf_counter()
        self.log = open(self.home / "serve.log", "w")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(self.command, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)  # fmt: skip
        return self._until(start, "/healthz"), self._until(start, "/readyz")

    def _until(self, start: float, path: str) -> float:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while time.perf_counter() - start < 900:
                try:
                    if client.get(path).status_code == 200:
                        return time.perf_counter() - start
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{self.url}{path} not 200 after 900 s")

    def log_lines(self, *needles: str) -> list[str]:
        text = (self.home / "serve.log").read_text(errors="replace")
        return [line for line in text.splitlines() if any(n in line for n in needles)]

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def children_rss_mb(self) -> float:
        """RSS of the server's child processes (the alias worker), 0 when none."""
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            pids = children.read().split()
        return sum(rss_mb(int(child)) for child in pids)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system, all threads)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


MAX_OPERATIONS = 32  # per request (ServeOptions.max_operations): more go in parallel requests


def bodies(image: str, ids: list[int]) -> list[dict[str, Any]]:
    return [body(image, ids[i : i + 25]) for i in range(0, len(ids), 25)] if len(ids) > \
        MAX_OPERATIONS else [body(image, ids)]  # fmt: skip


def body(image: str, ids: list[int]) -> dict[str, Any]:
    return {"image_base64": image,
            "operations": [{"type": "classify", "collection_id": i} for i in ids]}  # fmt: skip


def timed(client: httpx.Client, payload: dict[str, Any]) -> float:
    start = time.perf_counter()
    response = client.post("/v1/analyze", json=payload)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    return time.perf_counter() - start


def classified(client: httpx.Client, image: str, ids: list[int], pool: ThreadPoolExecutor) -> float:
    """Seconds until every collection of `ids` is answered (parallel requests past 32)."""
    start = time.perf_counter()
    list(pool.map(lambda payload: timed(client, payload), bodies(image, ids)))
    return time.perf_counter() - start


def readiness(client: httpx.Client) -> dict[str, Any]:
    ready: dict[str, Any] = client.get("/readyz").json()
    return {"champions_known": ready["champions_known"],
            "models_loaded": len(ready["loaded_models"]),
            "model_memory_mb": round(ready["model_memory_bytes"] / 2**20, 1),
            "budget_mb": round(ready["model_memory_budget_bytes"] / 2**20)}  # fmt: skip


def warm_and_evicted(client: httpx.Client, image: str, args: argparse.Namespace) -> None:
    """p50/p95 per group size, warm and after eviction, over `args.rounds` rounds (see the
    module docstring); also the single-round figures this benchmark printed before."""
    head = head_bytes(client, image)
    budget = args.budget_mb * 2**20
    next_id = 2 * max(SIZES) + 101  # past the warm groups and the preloaded champions
    print(f"\none classifier head: {head / 1024:.0f} KB (estimated); budget {args.budget_mb} MB; "
          f"{args.rounds} rounds")  # fmt: skip
    print("| collections per request | warm p50 ms | warm p95 ms | after eviction p50 ms | "
          "after eviction p95 ms | p95 ratio | samples each | groups cycled | single round: "
          "warm p95 (n=requests), evicted p95, ratio |\n" + "|---" * 9 + "|")  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        for size in args.sizes:
            groups = max(args.requests, math.ceil(1.5 * budget / (size * head)))
            pool_ids = [[1 + (next_id + g * size + i - 1) % args.collections
                         for i in range(size)] for g in range(groups)]  # fmt: skip
            next_id += groups * size
            rounds = [one_round(client, image, size, pool_ids, pool) for _ in range(args.rounds)]
            print_row(size, groups, rounds, args.requests)


Round = tuple[list[float], list[float]]  # warm samples, after-eviction samples


def one_round(
    client: httpx.Client, image: str, size: int, pool_ids: list[list[int]], pool: ThreadPoolExecutor
) -> Round:
    """As many warm requests as groups, then every group asked once (each pushes older ones
    out of the budget: the eviction), then each group again, measured: each was unloaded by
    the others since."""
    warm_ids = list(range(1, size + 1))
    classified(client, image, warm_ids, pool)
    warm = [classified(client, image, warm_ids, pool) for _ in pool_ids]
    for ids in pool_ids:
        classified(client, image, ids, pool)
    return warm, [classified(client, image, ids, pool) for ids in pool_ids]


def print_row(size: int, groups: int, rounds: list[Round], requests: int) -> None:
    warm = percentiles([s for w, _ in rounds for s in w])
    evicted = percentiles([s for _, e in rounds for s in e])
    first_warm, first_evicted = percentiles(rounds[0][0][:requests]), percentiles(rounds[0][1])
    samples = sum(len(e) for _, e in rounds)
    print(f"| {size} | {warm['p50']:.1f} | {warm['p95']:.1f} | {evicted['p50']:.1f} | "
          f"{evicted['p95']:.1f} | {evicted['p95'] / warm['p95']:.2f}x | {samples} | {groups} | "
          f"{first_warm['p95']:.1f}, {first_evicted['p95']:.1f}, "
          f"{first_evicted['p95'] / first_warm['p95']:.2f}x |")  # fmt: skip


def head_bytes(client: httpx.Client, image: str) -> int:
    timed(client, body(image, [1]))
    loaded = client.get("/readyz").json()["loaded_models"]
    return int(loaded["classifier 1"])


def tracing_on_off(off: Server, on: Server, image: str, receiver: Receiver, n: int) -> None:
    """Both servers at concurrency 8, 10 warm collections per request, blocks interleaved."""
    payload = body(image, list(range(1, 11)))
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    walls, cpus = {"off": 0.0, "on": 0.0}, {"off": 0.0, "on": 0.0}
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            for name, server in (("off", off), ("on", on)):
                with httpx.Client(base_url=server.url, timeout=120) as client:
                    timed(client, payload)
                    start, cpu = time.perf_counter(), server.cpu_s()
                    latencies[name] += pool.map(lambda _: timed(client, payload), range(n))
                    walls[name] += time.perf_counter() - start
                    cpus[name] += server.cpu_s() - cpu
    print("\n| tracing (c=8, 10 collections) | p50 ms | p95 ms | requests/s | server CPU ms "
          "per request |\n|---|---|---|---|---|")  # fmt: skip
    for name in ("off", "on"):
        p = percentiles(latencies[name])
        count = len(latencies[name])
        print(f"| {name} | {p['p50']:.1f} | {p['p95']:.1f} | {count / walls[name]:.1f} | "
              f"{cpus[name] / count * 1000:.1f} |")  # fmt: skip
    time.sleep(6)  # the server's batch span processor exports every 5 s
    print(f"spans received: {len(receiver.spans)}")
    print_one_trace(receiver.spans)


def print_one_trace(spans: list[ReceivedSpan]) -> None:
    roots = [s for s in spans if s.name == "POST /v1/analyze"]
    if not roots:
        return
    root = roots[-1]
    by_parent: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        if span.trace_id == root.trace_id:
            by_parent.setdefault(span.parent_id, []).append(span)

    def show(span: ReceivedSpan, depth: int) -> None:
        extra = {k: v for k, v in span.attributes.items() if k in ("batch_size", "model.key")}
        print(f"{'  ' * depth}{span.name}: {span.ms:.2f} ms {extra or ''}")
        for child in sorted(by_parent.get(span.span_id, []), key=lambda s: s.start_ns):
            show(child, depth + 1)

    print("one traced request (10 classify operations):")
    show(root, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--budget-mb", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20,
                        help="warm requests of the single-round figure")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="evict-then-request rounds")
    parser.add_argument("--sizes", type=lambda text: [int(x) for x in text.split(",")],
                        default=list(SIZES), help="collections per request: 1,10,50")  # fmt: skip
    parser.add_argument("--tracing-only", action="store_true",
                        help="no warm/eviction table: both servers fresh")  # fmt: skip
    args = parser.parse_args()
    image = photo()
    with tempfile.TemporaryDirectory(prefix="serve-scale-") as tmp, receiving() as receiver:
        root = Path(tmp)
        start = time.perf_counter()
        models = save_tiny_models(root / "models")
        uri = build_registry(root, args.collections, args.datasets)
        print(f"registry: {args.collections} collections + {args.datasets} datasets built in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        budget = {"ML_PLATFORM_SERVE_MODEL_MEMORY_MB": str(args.budget_mb)}
        off = Server(root, uri, models, budget)
        on = Server(root, uri, models, {**budget, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                                        "OTEL_SERVICE_NAME": "serve-scale"})  # fmt: skip
        up_s, ready_s = off.start()
        with httpx.Client(base_url=off.url, timeout=300) as client:
            print(f"\nprocess start to /healthz 200: {up_s:.1f} s, to /readyz 200: {ready_s:.1f} "
                  f"s; RSS {off.rss_mb():.0f} MB; /readyz: {readiness(client)}")  # fmt: skip
            print("\n".join(off.log_lines("champion index", "preload")))
            try:
                if not args.tracing_only:
                    warm_and_evicted(client, image, args)
                    print(
                        f"after: RSS {off.rss_mb():.0f} MB (child processes: "
                        f"{off.children_rss_mb():.0f} MB); /readyz: {readiness(client)}"
                    )
                print(f"\ntraced server: /readyz 200 in {on.start()[1]:.1f} s")
                try:
                    tracing_on_off(off, on, image, receiver, args.requests)
                finally:
                    on.stop()
            finally:
                off.stop()


if __name__ == "__main__":
    main()
