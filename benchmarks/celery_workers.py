"""`ml-platform run` over the demo's sample snapshot with 1 and with 2 dagster-celery workers.

Everything is real and local: a throw-away PostgreSQL (Dagster run/event/schedule storage and
MLflow's backend), Redis (the Celery broker and result backend), an MLflow server, the sample
snapshot served by the crawlr test server over HTTP, and `ml-platform celery-worker`
processes with `--concurrency 1` each. Prints the wall time of each pass, the steps each worker
executed, and the ratio. Embedders are the real CLIP ViT-B/32 and DINOv2-small architectures
with random weights (no hub here), so compute per image is the real one. Never asserts.

    python benchmarks/celery_workers.py [--workers 1 2] [--store-url s3]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml_platform.demo.sample import build_sample_snapshot  # noqa: E402
from tests.crawlr_server import CrawlrServer  # noqa: E402
from tests.processes import (  # noqa: E402
    base_env,
    celery_workers,
    run_cli,
    running_mlflow,
    snapshot_state,
    step_seconds,
    steps_by_worker,
    write_dagster_home,
)
from tests.servers import PostgresServer, running_postgres, running_redis  # noqa: E402


def one_pass(n_workers: int, postgres: PostgresServer, broker: str, root: Path) -> float:
    snapshot = root / "snapshot"
    root.mkdir(parents=True)
    build_sample_snapshot(snapshot)
    dagster_db, mlflow_db = postgres.create_database(), postgres.create_database()
    env = base_env({
        "ML_PLATFORM_EXECUTOR": "celery", "ML_PLATFORM_CELERY_BROKER_URL": broker,
        "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS": "true", "ML_PLATFORM_HOME": str(root / "home"),
    })  # fmt: skip
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(CrawlrServer(snapshot_state(snapshot)))
        mlflow = stack.enter_context(
            running_mlflow(postgres.url(mlflow_db), str(root / "artifacts"), root, env)
        )
        env |= {"ML_PLATFORM_CRAWLR": server.url, "ML_PLATFORM_MLFLOW_TRACKING_URI": mlflow}
        env["DAGSTER_HOME"] = str(write_dagster_home(root / "dagster", postgres.url(dagster_db)))
        names = [f"w{i}" for i in range(1, n_workers + 1)]
        # workers share the submitter's home here: the benchmark measures scaling, not isolation
        stack.enter_context(
            celery_workers(names, root / "workers", env, broker, shared_home=root / "home")
        )
        started = time.perf_counter()
        output = run_cli(["run"], env | {"ML_PLATFORM_HOME": str(root / "home")}, root, 1800)
        seconds = time.perf_counter() - started
    executed = {w: len(s) for w, s in steps_by_worker(root / "dagster").items()}
    print(f"  {n_workers} worker(s): {seconds:.1f} s; steps executed per worker {executed}")
    print("   ", next(line for line in output.splitlines() if line.startswith("wall time")))
    for step, step_s in sorted(step_seconds(root / "dagster").items()):
        print(f"    step {step}: {step_s:.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        postgres = stack.enter_context(running_postgres())
        broker = stack.enter_context(running_redis(root)).url()
        times = {n: one_pass(n, postgres, broker, root / f"pass{n}") for n in args.workers}
    if 1 in times:
        for n, seconds in times.items():
            print(f"wall time 1 worker / {n} workers: {times[1] / seconds:.2f}")


if __name__ == "__main__":
    main()
