"""A loaded champion classifier and what its model-version tags say about using it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from numpy.typing import NDArray

from ml_platform.domain import DerivativeType, Focus, WeightsStatus
from ml_platform.model_registry.collection.naming import UNKNOWN, VersionTag
from ml_platform.model_registry.collection.pyfunc import DECISION_COLUMN, PROBABILITY_COLUMN
from ml_platform.model_registry.loading import ServableModel
from ml_platform.model_registry.versions import ModelVersionInfo
from ml_platform.serving.errors import ErrorKind, ServingError


@dataclass(frozen=True)
class Prediction:
    probability: float
    is_in_collection: bool


@dataclass(frozen=True)
class Champion:
    """One loaded model version (`info`: its name, version and tags); its focus, width,
    threshold and weights come from its tags."""

    collection_id: int
    info: ModelVersionInfo
    focus: Focus
    dimensionality: int
    threshold: float | None
    weights: WeightsStatus | None
    model: ServableModel  # a PyFuncModel, or the head read directly (`loading.load_head`)

    @property
    def version(self) -> str:
        return self.info.version

    def predict(self, vector: NDArray[np.float32]) -> Prediction:
        """Run the pyfunc model on one embedding of width `dimensionality`."""
        features = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if features.shape[1] != self.dimensionality:
            raise ServingError(
                ErrorKind.INCOMPATIBLE_CLASSIFIER,
                f"{self.info.name} version {self.version} expects {self.dimensionality}-d "
                f"embeddings but got {features.shape[1]}-d; refusing to classify",
            )
        frame = self.model.predict(features)
        if not isinstance(frame, pd.DataFrame) or PROBABILITY_COLUMN not in frame:
            raise ServingError(
                ErrorKind.INCOMPATIBLE_CLASSIFIER,
                f"{self.info.name} version {self.version} did not return a frame with a "
                f"{PROBABILITY_COLUMN!r} column; it is not a collection classifier",
            )
        return Prediction(
            probability=float(frame[PROBABILITY_COLUMN].iloc[0]),
            is_in_collection=bool(frame[DECISION_COLUMN].iloc[0]),
        )


def champion_from(info: ModelVersionInfo, model: ServableModel) -> Champion:
    """A Champion from a registry entry and its loaded model; a clear error on bad tags."""
    tags = info.tags
    return Champion(
        collection_id=_collection_id(info),
        info=info,
        focus=focus_of(info),
        dimensionality=_dimensionality(info, model),
        threshold=_optional_float(tags.get(VersionTag.THRESHOLD.value)),
        weights=_weights(tags.get(VersionTag.WEIGHTS.value)),
        model=model,
    )


def focus_of(info: ModelVersionInfo) -> Focus:
    """The (derivative, embedding type) recorded on a model version."""
    derivative = info.tags.get(VersionTag.DERIVATIVE_TYPE.value)
    embedding = info.tags.get(VersionTag.EMBEDDING_TYPE.value)
    known = [d.value for d in DerivativeType]
    if derivative not in known or not embedding or embedding == UNKNOWN:
        raise _bad_tags(
            info,
            f"tags {VersionTag.DERIVATIVE_TYPE}={derivative!r} (known: {known}) and "
            f"{VersionTag.EMBEDDING_TYPE}={embedding!r} do not name a usable focus",
        )
    return Focus(DerivativeType(derivative), embedding)


def _collection_id(info: ModelVersionInfo) -> int:
    raw = info.tags.get(VersionTag.COLLECTION_ID.value, "")
    if raw.isdigit():
        return int(raw)
    return int(info.name.rsplit("-", 1)[-1])


def _dimensionality(info: ModelVersionInfo, model: ServableModel) -> int:
    tagged = info.tags.get(VersionTag.DIMENSIONALITY.value)
    declared = _model_width(model)
    if tagged is None or tagged == UNKNOWN:
        if declared is None:
            raise _bad_tags(info, "no dimensionality tag and the model does not declare one")
        return declared
    if not tagged.isdigit():
        raise _bad_tags(info, f"{VersionTag.DIMENSIONALITY} tag {tagged!r} is not an integer")
    if declared is not None and declared != int(tagged):
        raise _bad_tags(
            info, f"{VersionTag.DIMENSIONALITY} tag {tagged} but the model expects {declared}"
        )
    return int(tagged)


def _model_width(model: ServableModel) -> int | None:
    try:
        python_model: object = model.unwrap_python_model()
    except MlflowException:  # no PythonModel inside: the model declares no width
        return None
    width = getattr(python_model, "dimensionality", None)
    return int(width) if isinstance(width, int) else None


def _optional_float(raw: str | None) -> float | None:
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def _weights(raw: str | None) -> WeightsStatus | None:
    return WeightsStatus(raw) if raw in {w.value for w in WeightsStatus} else None


def _bad_tags(info: ModelVersionInfo, problem: str) -> ServingError:
    return ServingError(
        ErrorKind.INCOMPATIBLE_CLASSIFIER,
        f"{info.name} version {info.version} cannot be served: {problem}; "
        "fix the model-version tags in MLflow or register a new version",
    )
