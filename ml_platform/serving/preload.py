"""Start-up preload: the index of every champion (collection classifiers and fine-tuned
dataset classifiers, `champion_index`: two bulk registry searches each), the detector, and
the most used champion of each focus with its embedder, then the most used others up to the
model memory budget, at most `WARM_MAX` of them and for at most `WARM_S`, before /readyz says
ready. The others load on their first request: start-up reads the registry in bulk and never
loads one model per collection (10,000 champions: two searches of 10,000 rows).

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
import time
from enum import StrEnum

from mlflow.exceptions import MlflowException
from PIL import Image

from ml_platform.domain import DerivativeType
from ml_platform.model_registry.collection.naming import (
    MODEL_NAME_PREFIX,
    VersionTag,
    collection_id_of,
)
from ml_platform.model_registry.dataset.naming import DATASET_MODEL_PREFIX
from ml_platform.serving.backoff import BACKOFF_BASE_S, BACKOFF_MAX_S
from ml_platform.serving.champion import Champion
from ml_platform.serving.champion_index import champion_index
from ml_platform.serving.dataset_models import DatasetModelCache
from ml_platform.serving.errors import ServingError
from ml_platform.serving.lazy import LOAD_ERRORS
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_cache import REGISTRY_ERRORS, ChampionCache
from ml_platform.serving.operations import check_compatible, embedder_for
from ml_platform.serving.vision_models import VisionModels

log = logging.getLogger(__name__)
WARM_UP_SIDE = 320  # px: a blank image the size of a small photo
WARM_MAX = 100  # champions warmed at start-up at most, whatever the budget
WARM_S = 5.0  # and past the first champion of each focus, for at most this long
WARM_UP_ERRORS: tuple[type[BaseException], ...] = (ServingError, MlflowException, *LOAD_ERRORS)


class PreloadStatus(StrEnum):
    IDLE = "idle"
    LOADING = "loading"
    DONE = "done"


class Preloader:
    def __init__(
        self,
        champions: ChampionCache,
        models: VisionModels,
        datasets: DatasetModelCache,
        budget: ModelBudget,
    ) -> None:
        self._budget = budget
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
            start = time.perf_counter()
            self._problems = self.load_all()
            self.status = PreloadStatus.DONE
            if not self._problems:
                log.info("preload complete in %.1f s: %d champions known, %d models loaded "
                         "(%.1f MB)", time.perf_counter() - start,
                         len(self._champions.known_keys()), len(self._budget.loaded()),
                         self._budget.total_bytes() / 2**20)  # fmt: skip
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
            self._index()
        except REGISTRY_ERRORS as exc:
            problems["model registry"] = f"unreachable: {exc}"
            return problems
        problems.update(self._warm())
        self.step = ""
        return problems

    def _index(self) -> None:
        """Seed both caches with every champion's registry entry (nothing is loaded)."""
        client = self._champions.client
        collections = champion_index(client, MODEL_NAME_PREFIX)
        self._champions.seed({cid: info for name, info in collections.items()
                              if (cid := collection_id_of(name)) is not None})  # fmt: skip
        datasets = champion_index(client, DATASET_MODEL_PREFIX)
        self._datasets.seed({name.removeprefix(DATASET_MODEL_PREFIX): info
                             for name, info in datasets.items()})  # fmt: skip

    def _warm(self) -> dict[str, str]:
        """The most used champion of each focus (so every embedder in use is warm), then the
        most used others (then by id) for at most `WARM_S`, while the last one's size still
        fits the budget."""
        budget = self._budget
        collections = budget.ranked(ChampionCache.budget_name,
                                    [str(c) for c in self._champions.known_keys()])  # fmt: skip
        firsts = self._first_per_focus(collections)
        rest = [key for key in collections if key not in firsts]
        datasets = budget.ranked(DatasetModelCache.budget_name, self._datasets.known_keys())
        wanted = [*(("collection", key) for key in [*firsts, *rest]),
                  *(("dataset", key) for key in datasets)]  # fmt: skip
        problems: dict[str, str] = {}
        deadline = time.monotonic() + WARM_S
        for index, (kind, key) in enumerate(wanted[:WARM_MAX]):
            if self._stop.is_set() or (index >= len(firsts) and time.monotonic() > deadline):
                break
            before = budget.total_bytes()
            self.step = f"{kind} {key}"
            problem = (
                self._load_champion(int(key)) if kind == "collection" else self._load_dataset(key)
            )
            if problem is not None:
                problems[f"{kind} {key}"] = problem
            if not budget.fits(budget.total_bytes() - before):
                break
        return problems

    def _first_per_focus(self, ranked: list[str]) -> list[str]:
        firsts: dict[tuple[str | None, str | None], str] = {}
        for key in ranked:
            tags = self._champions.known_tags(int(key))
            focus = (tags.get(VersionTag.DERIVATIVE_TYPE), tags.get(VersionTag.EMBEDDING_TYPE))
            firsts.setdefault(focus, key)
        return list(firsts.values())

    def _load_dataset(self, dataset: str) -> str | None:
        try:
            self._datasets.get(dataset)
        except WARM_UP_ERRORS as exc:
            return f"cannot be served: {exc}"
        return None

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
