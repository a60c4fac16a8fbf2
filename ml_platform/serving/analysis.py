"""Per-request memo: the detection, each crop and each (target, embedding type) at most once.

Operations of one request run one after another on one worker thread, so the memo needs no
lock; failures are memoised too (a missing face is reported to every operation that needs
it without running the detector again).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_platform import telemetry
from ml_platform.domain import Box, DerivativeType
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import Stage
from ml_platform.serving.schemas import InferenceTimings
from ml_platform.serving.vision_models import VisionModels
from ml_platform.vision.crops import crop_for, derivative_box
from ml_platform.vision.detectors import DetectionResult

_UNTRACED = nullcontext()


class StageClock:
    """Seconds spent per stage within one request; a measured block is also a span unless
    `traced=False` (sub-millisecond steps repeated per operation: a span each would cost
    more than the step)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[Stage, float] = defaultdict(float)

    @contextmanager
    def measure(self, stage: Stage, *, traced: bool = True) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with telemetry.span(stage.value) if traced else _UNTRACED:
                yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def ms(self, stage: Stage) -> float:
        return round(self.seconds.get(stage, 0.0) * 1000.0, 3)

    def inference_timings(self, inference: Stage) -> InferenceTimings:
        """Fetch, decode and the `inference` stage's time (the total is the route's to set)."""
        return InferenceTimings(
            fetch_ms=self.ms(Stage.FETCH),
            decode_ms=self.ms(Stage.DECODE),
            inference_ms=self.ms(inference),
        )


class ImageAnalysis:
    """One decoded image and everything derived from it during one request."""

    def __init__(self, image: Image.Image, models: VisionModels, clock: StageClock) -> None:
        self.image = image
        self.models = models
        self.clock = clock
        self._detection: DetectionResult | None = None
        self._crops: dict[DerivativeType, Image.Image | ServingError] = {}
        self._embeddings: dict[tuple[DerivativeType, str], NDArray[np.float32] | ServingError] = {}

    def detection(self) -> DetectionResult:
        """The detector's result for this image (run on first use)."""
        if self._detection is None:
            with self.clock.measure(Stage.DETECTION):
                self._detection = self.models.detect(self.image)
        return self._detection

    def box(self, target: DerivativeType) -> Box | None:
        if target is DerivativeType.WHOLE_IMAGE:
            return None
        return derivative_box(target, self.detection())

    def derivative(self, target: DerivativeType) -> Image.Image:
        """The whole image or its prominent person/face crop; 422 when nothing was detected."""
        if target is DerivativeType.WHOLE_IMAGE:
            return self.image
        if target not in self._crops:
            self._crops[target] = self._crop(target)
        crop = self._crops[target]
        if isinstance(crop, ServingError):
            raise crop
        return crop

    def embedding(self, target: DerivativeType, embedding_type: str) -> NDArray[np.float32]:
        """The `embedding_type` embedding of `target`, computed once per request."""
        key = (target, embedding_type)
        if key not in self._embeddings:
            self._embeddings[key] = self._embed(target, embedding_type)
        vector = self._embeddings[key]
        if isinstance(vector, ServingError):
            raise vector
        return vector

    def _crop(self, target: DerivativeType) -> Image.Image | ServingError:
        detection = self.detection()
        crop = crop_for(self.image, target, detection)
        if crop is None:
            what = "face" if target is DerivativeType.PROMINENT_FACE else "person"
            return ServingError(
                ErrorKind.NO_DETECTION,
                f"no {what} detected in the image, so there is no {target.value} to use "
                f"(detector: {self._detector_name(target, detection)})",
            )
        return crop

    @staticmethod
    def _detector_name(target: DerivativeType, detection: DetectionResult) -> str:
        if target is DerivativeType.PROMINENT_FACE:
            return detection.face_detector
        return detection.person_detector

    def _embed(
        self, target: DerivativeType, embedding_type: str
    ) -> NDArray[np.float32] | ServingError:
        try:
            image = self.derivative(target)
            with self.clock.measure(Stage.EMBEDDING):
                return self.models.embed(embedding_type, image)
        except ServingError as exc:
            return exc
