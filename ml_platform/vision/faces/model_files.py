"""dlib and the face_recognition_models files, behind the optional ``[faces]`` extra.

dlib is imported when a face model is first needed, never at module import, so the rest
of the platform works without the extra. Model files are found inside the installed
``face_recognition_models`` package without importing it (its ``__init__`` needs the
removed ``pkg_resources``).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from ml_platform.vision.embedders.base import EmbedderUnavailableError

EXTRA_HINT = (
    "install the faces extra: pip install 'ml_platform[faces]' (dlib-bin, face-recognition-models)"
)
MODELS_PACKAGE = "face_recognition_models"


class FacesExtraMissingError(EmbedderUnavailableError):
    """dlib or face_recognition_models is not installed."""


class FaceModelFile(StrEnum):
    """The dlib model files used here, all shipped by face_recognition_models (CC0)."""

    RESNET_V1 = "dlib_face_recognition_resnet_model_v1.dat"
    LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
    LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"


def import_dlib() -> ModuleType:
    """The dlib module, or FacesExtraMissingError naming the extra."""
    try:
        return importlib.import_module("dlib")
    except ImportError as exc:
        raise FacesExtraMissingError(f"face models need dlib ({exc}); {EXTRA_HINT}") from exc


def model_path(file: FaceModelFile) -> Path:
    """Where ``file`` is installed, or FacesExtraMissingError naming the extra."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "models" / file.value
        if path.is_file():
            return path
    raise FacesExtraMissingError(
        f"{file.value} not found: the package {MODELS_PACKAGE} is missing or incomplete; "
        f"{EXTRA_HINT}"
    )


_loaded: dict[FaceModelFile, Any] = {}
_lock = threading.Lock()


def load_model(file: FaceModelFile) -> Any:
    """The dlib object for ``file`` (a shape predictor or the ResNet), loaded once."""
    with _lock:
        if file not in _loaded:
            dlib = import_dlib()
            path = str(model_path(file))
            is_net = file is FaceModelFile.RESNET_V1
            _loaded[file] = (
                dlib.face_recognition_model_v1(path) if is_net else dlib.shape_predictor(path)
            )
        return _loaded[file]
