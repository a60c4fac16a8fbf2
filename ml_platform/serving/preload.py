"""Start-up preload: every champion (collection classifiers with their embedders, and the
fine-tuned dataset classifiers) and the detector, before /readyz says ready.

`Preloader.start()` runs on its own thread (started by the app's lifespan when
settings.serve_preload is on). `status` is `idle` (never started), `loading`, or `done`;
`problems()` names what could not be loaded at the last attempt. Attempts with problems are
repeated with a doubling backoff until everything loads, so a registry or model that comes
back makes the server ready again without a restart.

Each model also runs once on a blank image before /readyz turns 200 (the detector, every
champion's embedder through its serving batcher, the classifier): a model that loads but
cannot run is reported before the server says ready, and first-run costs (buffer
allocation, the batcher's thread) are paid before the first request.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

from mlflow.exceptions import MlflowException
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.lookup import list_models
from ml_platform.model_registry.dataset.lookup import list_dataset_models
from ml_platform.model_registry.dataset.naming import DATASET_MODEL_PREFIX
from ml_platform.serving.backoff import BACKOFF_BASE_S, BACKOFF_MAX_S
from ml_platform.serving.champion import Champion
from ml_platform.serving.dataset_models import DatasetModelCache
from ml_platform.serving.errors import ServingError
from ml_platform.serving.lazy import LOAD_ERRORS
from ml_platform.serving.model_cache import REGISTRY_ERRORS, ChampionCache
from ml_platform.serving.operations import check_compatible, embedder_for
from ml_platform.serving.vision_models import VisionModels

log = logging.getLogger(__name__)
WARM_UP_SIDE = 320  # px: a blank image the size of a small photo
WARM_UP_ERRORS: tuple[type[BaseException], ...] = (ServingError, MlflowException, *LOAD_ERRORS)


class PreloadStatus(StrEnum):
    IDLE = "idle"
    LOADING = "loading"
    DONE = "done"


class Preloader:
    def __init__(
        self, champions: ChampionCache, models: VisionModels, datasets: DatasetModelCache
    ) -> None:
        self._champions = champions
        self._models = models
        self._datasets = datasets
        self.status = PreloadStatus.IDLE
        self.step = ""
        self._problems: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self.status = PreloadStatus.LOADING
            self._thread = threading.Thread(
                target=self._run, name="ml-platform-preload", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def problems(self) -> list[str]:
        return [f"{what}: {reason}" for what, reason in sorted(self._problems.items())]

    def failed(self) -> dict[str, str]:
        """What the last preload attempt could not load: name -> why."""
        return dict(sorted(self._problems.items()))

    def _run(self) -> None:
        delay = BACKOFF_BASE_S
        while not self._stop.is_set():
            self._problems = self.load_all()
            self.status = PreloadStatus.DONE
            if not self._problems:
                log.info("preload complete: %s", self._champions.loaded_versions())
                return
            log.warning("preload incomplete, retrying in %.0f s: %s", delay, self.problems())
            self._stop.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def load_all(self) -> dict[str, str]:
        """Load everything once; what failed, by name."""
        problems: dict[str, str] = {}
        self.step = "the detector"
        try:
            self._models.detect(warm_up_image())
        except ServingError as exc:
            problems["detector"] = exc.message
        except LOAD_ERRORS as exc:
            problems["detector"] = f"warm-up run failed: {exc}"
        self.step = "the registry's champions"
        try:
            ids = [
                m.collection_id for m in list_models(self._champions.client) if m.champion_version
            ]
        except REGISTRY_ERRORS as exc:
            problems["model registry"] = f"unreachable: {exc}"
            return problems
        for collection_id in ids:
            if collection_id is None or self._stop.is_set():
                continue
            self.step = f"collection {collection_id}"
            problem = self._load_champion(collection_id)
            if problem is not None:
                problems[f"collection {collection_id}"] = problem
        problems.update(self._load_datasets())
        self.step = ""
        return problems

    def _load_datasets(self) -> dict[str, str]:
        """Every dataset champion, loaded into the cache /v1/predict reads."""
        problems: dict[str, str] = {}
        try:
            names = [m.name for m in list_dataset_models(self._champions.client)
                     if m.champion_version]  # fmt: skip
        except REGISTRY_ERRORS as exc:
            return {"model registry": f"unreachable: {exc}"}
        for name in names:
            dataset = name.removeprefix(DATASET_MODEL_PREFIX)
            if self._stop.is_set():
                break
            self.step = f"dataset {dataset}"
            try:
                self._datasets.get(dataset)
            except WARM_UP_ERRORS as exc:
                problems[f"dataset {dataset}"] = f"cannot be served: {exc}"
        return problems

    def _load_champion(self, collection_id: int) -> str | None:
        try:
            champion = self._champions.get(collection_id)
            key, embedder = embedder_for(champion, self._models)
            check_compatible(champion, embedder)
            if champion.focus.derivative_type is not DerivativeType.WHOLE_IMAGE:
                self._models.detector()
        except ServingError as exc:
            return f"classifier cannot be served: {exc.message}"
        try:
            self._warm_up(champion, key)
        except WARM_UP_ERRORS as exc:
            return f"warm-up run failed: {exc}"
        return None

    def _warm_up(self, champion: Champion, key: str) -> None:
        """One embedding (through the serving batcher) and one prediction."""
        champion.predict(self._models.embed(key, warm_up_image()))


def warm_up_image() -> Image.Image:
    return Image.new("RGB", (WARM_UP_SIDE, WARM_UP_SIDE), (128, 128, 128))
