"""Shared fixtures. Tests that need ../shared find it through ML_PLATFORM_SHARED_DIR."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.otlp_receiver import otlp  # noqa: F401  (fixture: a real OTLP/HTTP receiver)
from tests.s3 import moto_s3, s3_store_url  # noqa: F401  (fixtures: S3 through moto's server)
from tests.servers import (  # noqa: F401  (fixtures: real PostgreSQL, Redis, S3)
    postgres_server,
    postgres_url,
    redis_server,
    s3_bucket,
    s3_server,
)
from tests.tiny_models import save_tiny_models

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    return Path(os.environ.get("ML_PLATFORM_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared reference material, or a clean skip when it is absent."""
    path = shared_path()
    if not (path / "data").is_dir():
        pytest.skip(f"reference data not found at {path} (set ML_PLATFORM_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def pet_photos(shared_dir: Path) -> dict[str, list[Path]]:
    """Breed name -> sorted photo paths from ../shared/data/pets."""
    pets = shared_dir / "data" / "pets"
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(pets.iterdir()) if d.is_dir()}


@pytest.fixture(scope="session")
def efficientnet_onnx(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "efficientnet_lite0_features.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def yunet_onnx(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "face_detection_yunet_2023mar.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny randomly initialised CLIP and DINOv2 saved as local model directories.

    They go through the real loading code (`from_pretrained` on a local directory, as with
    ML_PLATFORM_CLIP_MODEL / ML_PLATFORM_DINO_MODEL); only their size is not the real one.
    """
    return save_tiny_models(tmp_path_factory.mktemp("tiny_models"))


# Dagster keeps the "current" definitions-state storage in a context variable that an
# instance sets while it is entered (`with instance:`). An ephemeral instance entered inside a
# generator that is never closed (an execution abandoned part-way) leaves it pointing at a
# collected instance, and every later Definitions load in this process then fails with
# "Attempted to resolve undefined DagsterInstance weakref" (seen once in a full run, order
# dependent, never in a module alone). `ml-platform` commands run in fresh processes; the
# suite shares one, so each module and each test starts with none set.
def _without_leaked_defs_state() -> Iterator[None]:
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture(scope="module", autouse=True)
def _module_without_leaked_defs_state() -> Iterator[None]:
    yield from _without_leaked_defs_state()


@pytest.fixture(autouse=True)
def _test_without_leaked_defs_state() -> Iterator[None]:
    yield from _without_leaked_defs_state()
