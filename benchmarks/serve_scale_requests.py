"""benchmarks/serve_scale.py's requests: `/v1/analyze` bodies classifying N collections, and
the warm and after-eviction table, over evict-then-request rounds (each round: as many warm
requests as groups, every group asked once, which evicts, then every group again, measured;
p50/p95 over all rounds' samples, warm and after eviction from the same number of samples;
the single-round figures the benchmark printed before beside them)."""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from serve_helpers import percentiles

SIZES = (1, 10, 50)

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
