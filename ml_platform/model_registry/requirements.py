"""Pinned pip requirements for logged models (explicit, so MLflow does not infer them).

Inferring requirements makes MLflow load the model in a subprocess on every log_model call;
pinning the few packages the pyfunc model imports is faster and exact. The model class
lives in `ml_platform`, which must be installed wherever a model is loaded.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

MODEL_PACKAGES = ("mlflow", "scikit-learn", "numpy", "pandas", "cloudpickle")


def model_pip_requirements() -> list[str]:
    """`package==installed version` for each package a logged classifier needs."""
    return [f"{package}=={_installed_version(package)}" for package in MODEL_PACKAGES]


def _installed_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError as error:
        raise RuntimeError(
            f"{package} is not installed but logged classifiers need it; "
            f"install it with `pip install {package}`"
        ) from error
