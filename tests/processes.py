"""Platform processes on top of tests/servers.py: an MLflow server, dagster-celery workers, and
the sample snapshot served by the crawlr test server. Used by the distributed test and by
benchmarks/celery_workers.py; plain context managers, no pytest."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.crawlr_server import CrawlrState
from tests.servers import free_port, wait_for

PYTHON = sys.executable


def dagster_yaml(postgres_url: str) -> str:
    """An instance whose run, event-log and schedule storage is PostgreSQL (dagster-postgres)."""
    storage = f"storage:\n  postgres:\n    postgres_url: {json.dumps(postgres_url)}\n"
    return storage + "telemetry:\n  enabled: false\n"


def write_dagster_home(directory: Path, postgres_url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dagster.yaml").write_text(dagster_yaml(postgres_url))
    return directory


def snapshot_state(snapshot: Path) -> CrawlrState:
    """A snapshot directory (e.g. the demo's sample) as what the crawlr HTTP server serves."""
    state = CrawlrState()
    state.collections = json.loads((snapshot / "collections.json").read_text("utf-8-sig"))
    for entry in json.loads((snapshot / "images.json").read_text())["images"]:
        url = "/" + str(entry["url"]).lstrip("/")
        state.images.append({**entry, "url": url})
        state.files[url] = (snapshot / str(entry["url"])).read_bytes()
    return state


@contextlib.contextmanager
def logged_process(
    cmd: list[str], log: Path, env: Mapping[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in `log`; terminated (then killed) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running_mlflow(
    backend_uri: str, artifacts: str, workdir: Path, env: Mapping[str, str]
) -> Iterator[str]:
    """`mlflow server` with its backend on `backend_uri` and artifacts proxied to `artifacts`."""
    port, log = free_port(), workdir / "mlflow.log"
    cmd = [PYTHON, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", artifacts, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    with logged_process(cmd, log, env, workdir) as proc:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: proc.poll() is None and _healthy(url), "mlflow server", 180)
        except TimeoutError as exc:
            raise RuntimeError(f"mlflow server did not start: {log_tail(log)}") from exc
        yield url


@dataclass(frozen=True)
class Worker:
    name: str
    home: Path
    log: Path


def celery_ping(broker: str) -> set[str]:
    from celery import Celery

    app = Celery("ping", broker=broker, backend=broker)
    try:
        replies = app.control.ping(timeout=1.0)
    finally:
        app.close()
    return {name for reply in replies for name in reply}


@contextlib.contextmanager
def celery_workers(
    names: list[str],
    root: Path,
    env: Mapping[str, str],
    broker: str,
    shared_home: Path | None = None,
) -> Iterator[list[Worker]]:
    """`ml-platform celery-worker` processes, each in its own empty directory (cwd and home,
    unless `shared_home` is given)."""
    with contextlib.ExitStack() as stack:
        workers, procs = [], []
        for name in names:
            cwd = root / name
            cwd.mkdir(parents=True)
            home = shared_home or cwd
            worker_env = {**env, "ML_PLATFORM_HOME": str(home), "HOME": str(cwd),
                          "DAGSTER_HOME": str(cwd / "dagster")}  # fmt: skip
            cmd = [PYTHON, "-m", "ml_platform.cli", "celery-worker", "--home", str(home),
                   "--name", name, "--concurrency", "1", "--without-gossip",
                   "--without-mingle"]  # fmt: skip
            worker = Worker(name, home, root / f"{name}.log")
            procs.append(stack.enter_context(logged_process(cmd, worker.log, worker_env, cwd)))
            workers.append(worker)
        wanted = {f"{n}@" for n in names}

        def all_up() -> bool:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a celery worker exited")
            up = celery_ping(broker)
            return all(any(u.startswith(w) for u in up) for w in wanted)

        try:
            wait_for(all_up, f"celery workers {names}", 120)
        except (TimeoutError, RuntimeError) as exc:
            tails = "\n".join(f"{w.name}: {log_tail(w.log)}" for w in workers)
            raise RuntimeError(f"celery workers did not come up:\n{tails}") from exc
        yield workers


def steps_by_worker(dagster_home: Path) -> dict[str, set[str]]:
    """Celery worker name -> the steps it executed (`job[run]:step`), from the event log."""
    import dagster as dg

    executed: dict[str, set[str]] = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                event = record.dagster_event
                data = event.engine_event_data if event else None
                worker = data.metadata.get("Celery worker") if data else None
                if worker is not None and event and event.step_key:
                    executed.setdefault(str(worker.value), set()).add(
                        f"{run.job_name}:{event.step_key}"
                    )
    return executed


def step_seconds(dagster_home: Path) -> dict[str, float]:
    """`job:step` -> seconds summed over the instance's runs (Dagster's step stats)."""
    import dagster as dg

    total: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            for stats in instance.get_run_step_stats(run.run_id):
                if stats.start_time and stats.end_time:
                    key = f"{run.job_name}:{stats.step_key}"
                    total[key] = total.get(key, 0.0) + stats.end_time - stats.start_time
    return total


def run_cli(args: list[str], env: Mapping[str, str], cwd: Path, timeout_s: float) -> str:
    """`ml-platform ARGS` as a separate process; its output, or an error carrying it."""
    started = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-m", "ml_platform.cli", *args], env=dict(env), cwd=cwd, capture_output=True,
        text=True, timeout=timeout_s,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"ml-platform {' '.join(args)} exited {proc.returncode}:\n{output}")
    return output + f"\n(process wall time {time.perf_counter() - started:.1f} s)"


def base_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This environment without platform/Dagster/MLflow settings, plus `overrides`."""
    prefixes = ("ML_PLATFORM_", "DAGSTER_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    return {**env, "HF_HUB_OFFLINE": "1", **overrides}
