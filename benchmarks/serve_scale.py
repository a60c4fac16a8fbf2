"""Serving at scale: a registry of N collection champions on two foci + D dataset models.

Builds the registry (benchmarks/serve_scale_registry.py) and tiny local CLIP/DINOv2
checkpoints (the real loading code; embedding cost is not what is measured here), then starts
`ml-platform serve` as a subprocess and reports:

- time from process start to `/readyz` 200, what `/readyz` says is known and loaded, and the
  server's RSS (and, at the end, its child processes': the alias worker);
- p50/p95 of one `/v1/analyze` request classifying 1, 10 or 50 collections, warm (loaded) and
  after eviction (groups of collections cycled through until together they exceed the model
  memory budget, so each group was unloaded by the others before it is asked again), over
  `--rounds` evict-then-request rounds (serve_scale_requests.py);
- tracing on (OTLP/HTTP to a real receiver in this process) vs off at concurrency 8, two
  servers measured in interleaved blocks, and one traced request's spans.

    python benchmarks/serve_scale.py [--collections 10000] [--datasets 20] [--budget-mb 16]
        [--rounds 3] [--sizes 1,10,50] [--no-tracing]
        [--tracing-only]  # the tracing table alone, both servers fresh (no eviction run before)

Prints; never asserts.
"""

from __future__ import annotations

import argparse
import base64
import io
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
from serve_scale_requests import SIZES, body, timed, warm_and_evicted

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.otlp_receiver import ReceivedSpan, Receiver, receiving  # noqa: E402
from tests.tiny_models import save_tiny_models  # noqa: E402


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
        pids = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():  # any thread's children
            pids += (task / "children").read_text().split()
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


def readiness(client: httpx.Client) -> dict[str, Any]:
    ready: dict[str, Any] = client.get("/readyz").json()
    return {"champions_known": ready["champions_known"],
            "models_loaded": len(ready["loaded_models"]),
            "model_memory_mb": round(ready["model_memory_bytes"] / 2**20, 1),
            "budget_mb": round(ready["model_memory_budget_bytes"] / 2**20)}  # fmt: skip


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
    parser.add_argument("--no-tracing", action="store_true", help="no tracing table")
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
                if args.no_tracing:
                    return
                print(f"\ntraced server: /readyz 200 in {on.start()[1]:.1f} s")
                try:
                    tracing_on_off(off, on, image, receiver, args.requests)
                finally:
                    on.stop()
            finally:
                off.stop()


if __name__ == "__main__":
    main()
