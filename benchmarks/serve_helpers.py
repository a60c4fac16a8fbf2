"""What benchmarks/serve_latency.py needs around the server: a uvicorn thread, timing blocks."""

from __future__ import annotations

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
