"""Shared fixtures. Tests that need ../shared find it through ML_PLATFORM_SHARED_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
