"""What benchmarks/serve_latency.py needs around the server: a uvicorn thread, timing blocks,
the servers compared and the printed figures."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def report(name: str, how: str, concurrency: int, load: Load) -> dict[str, float]:
    figures = percentiles(load.latencies)
    rps = len(load.latencies) / load.wall
    print(
        f"{name:<17} {how:<10} c={concurrency:<2} n={len(load.latencies):<3} "
        f"p50={figures['p50']:7.1f} ms  p95={figures['p95']:7.1f} ms  "
        f"p99={figures['p99']:7.1f} ms  {rps:6.2f} req/s"
    )
    return {**figures, "rps": rps}


@dataclass
class Served:
    backend: str
    batch_max: int
    url: str
    state: Any
    cold_s: dict[str, float] = field(default_factory=dict)

    def cold_text(self) -> str:
        return ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in self.cold_s.items())

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.batch_max}"


def compare(servers: list[Served], c8: dict[str, dict[str, dict[str, float]]]) -> None:
    base = servers[0]
    print(f"\nvs the peer {base.label} (HTTP, c=8, same interleaved blocks):")
    for name, by_label in c8.items():
        old = by_label[base.label]
        for served in servers[1:]:
            new = by_label[served.label]
            print(
                f"  {name:<17} {served.label:<12} req/s {new['rps']:6.2f} vs {old['rps']:6.2f} "
                f"(throughput x{new['rps'] / old['rps']:.2f})  p95 {new['p95']:7.1f} vs "
                f"{old['p95']:7.1f} ms (p95 x{new['p95'] / old['p95']:.2f})  "
                f"p50 {new['p50']:7.1f} vs {old['p50']:7.1f} ms"
            )
    for served in servers:
        print(f"  cold start {served.label:<12} {served.cold_text()}")


def server_config(text: str) -> str:
    backend, _, batch = text.partition(":")
    if backend not in ("auto", "torch", "onnx", "onnx-int8") or not batch.isdigit():
        raise argparse.ArgumentTypeError(f"expected BACKEND:BATCH_MAX (auto:16), got {text!r}")
    return text
