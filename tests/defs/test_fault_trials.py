"""Fault trials: `ml-platform run` against a fault-injecting crawlr, SIGKILLed at seeded random
points, then recovery runs. Afterwards every served image is ingested exactly once and
embedded (or recorded without derivative) for every focus in use; nothing lost or doubled.

Two trials run in the default suite; `-m slow` runs twenty more seeds."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.crawlr.test_contract import FLAT, NESTED
from tests.faulty_crawlr import FaultPlan, FaultyState, faulty_crawlr

FIRST_IMAGES, APPENDED = 18, 6


def cli(
    env: dict[str, str], *args: str, state: FaultyState | None = None, kill_after: float = 0.0
) -> int | None:
    """Run `ml-platform ARGS`. With `state`, SIGKILL it `kill_after` seconds after its first
    request to crawlr (start-up time varies too much to aim by wall clock); None if killed."""
    before = state.requests if state else 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml_platform.cli", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if state is None:
        return proc.wait(timeout=900)
    deadline = time.monotonic() + 300
    while state.requests == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def status(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "ml_platform.cli", "status", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def environment(home: Path, url: str, models: dict[str, Path]) -> dict[str, str]:
    return {
        **os.environ,
        "ML_PLATFORM_HOME": str(home), "ML_PLATFORM_CRAWLR": url,
        "ML_PLATFORM_CLIP_MODEL": str(models["clip"]),
        "ML_PLATFORM_DINO_MODEL": str(models["dino"]),
        "ML_PLATFORM_CRAWLR_TIMEOUT_S": "1", "ML_PLATFORM_CRAWLR_RETRIES": "1",
        "ML_PLATFORM_CRAWLR_PAGE_SIZE": "5", "ML_PLATFORM_BATCH_MAX_IMAGES": "8",
        "ML_PLATFORM_DOWNLOAD_RETRY_BACKOFF_S": "0", "ML_PLATFORM_DOWNLOAD_MAX_ATTEMPTS": "50",
        "HF_HUB_OFFLINE": "1", "DAGSTER_HOME": str(home / "dagster"),
    }  # fmt: skip


def served_state(seed: int) -> FaultyState:
    state = FaultyState(
        collections=copy.deepcopy([FLAT, NESTED]), faults=FaultPlan(seed=seed, rate=0.3)
    )
    for image_id in range(1, FIRST_IMAGES + 1):
        state.add_image(image_id, pet_id=100 + image_id % 3)
    return state


def assert_complete(report: dict[str, Any], served: set[int]) -> None:
    images = report["images"]
    assert images["seen"] == len(served), report
    assert images["ok"] == len(served) and images["failed"] == 0 and images["pending"] == 0
    assert images["in_more_than_one_batch"] == 0
    assert report["foci"], "no focus in use"
    for focus, counts in report["foci"].items():
        assert counts["missing"] == 0 and counts["failed"] == 0, (focus, counts)
        assert counts["embedded"] + counts["no_derivative"] == len(served), (focus, counts)
    assert report["batches"]["incomplete"] == 0 and report["batches"]["total"] >= 2


def trial(seed: int, tmp_path: Path, models: dict[str, Path]) -> dict[str, int]:
    """One trial; returns the faults injected by kind and how many runs were killed."""
    rng, state = random.Random(seed), served_state(seed)
    with faulty_crawlr(state) as url:
        env = environment(tmp_path / "home", url, models)
        killed = cli(env, "run", state=state, kill_after=rng.uniform(0.5, 25.0)) is None
        for image_id in range(FIRST_IMAGES + 1, FIRST_IMAGES + APPENDED + 1):
            state.add_image(image_id, pet_id=100 + image_id % 3)  # appended between runs
        killed += cli(env, "run", state=state, kill_after=rng.uniform(0.5, 25.0)) is None
        state.faults.rate = 0.0  # crawlr recovers; the platform must now complete everything
        for _ in range(3):
            if cli(env, "run") == 0 and status(env)["batches"]["incomplete"] == 0:
                break
        assert_complete(status(env), state.served_ids())
    return {**state.faults.injected, "killed": killed}


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_runs_against_a_faulty_crawlr_recover_exactly_once(
    seed: int, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    outcome = trial(seed, tmp_path, tiny_model_dirs)
    assert sum(n for k, n in outcome.items() if k != "killed") > 0  # faults really injected


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
def test_twenty_more_fault_trials(
    seed: int, tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    trial(seed, tmp_path, tiny_model_dirs)


def test_two_runs_at_once_execute_each_partition_and_train_each_collection_once(
    tmp_path: Path, tiny_model_dirs: dict[str, Path]
) -> None:
    import dagster as dg
    from mlflow import MlflowClient

    state = served_state(seed=0)
    state.faults.rate = 0.0
    for im in state.images:
        im["collection_ids"] = [8] if im["id"] % 3 == 0 else []  # FLAT: whole-image CLIP
    with faulty_crawlr(state) as url:
        env = environment(tmp_path / "home", url, tiny_model_dirs)
        procs = [
            subprocess.Popen([sys.executable, "-m", "ml_platform.cli", "run"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]  # fmt: skip
        outputs = [p.communicate(timeout=900)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[-2500:] for o in outputs]
        assert_complete(status(env), state.served_ids())
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    records = instance.fetch_materializations(dg.AssetKey("image_catalog"), limit=1000).records
    partitions = [r.partition_key for r in records]
    assert len(partitions) == len(set(partitions)) >= 2  # no batch catalogued twice
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}")
    versions = mlflow.search_model_versions("name = 'crawlr-collection-8'")
    assert len(versions) == 1  # trained once, by one of the two
