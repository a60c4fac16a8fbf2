"""Everything one app holds: settings, metrics, model caches. Stored on `app.state.serving`."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import httpx
from fastapi import Request
from mlflow import MlflowClient

from ml_platform.home import with_home_rule
from ml_platform.serving import images
from ml_platform.serving.clusters_cache import ClustersCache
from ml_platform.serving.dataset_models import DatasetClassifiers, DatasetModelCache
from ml_platform.serving.images import DecodeOptions
from ml_platform.serving.lazy import LazyModels
from ml_platform.serving.metrics import CacheKind, ServingMetrics
from ml_platform.serving.model_budget import ModelBudget
from ml_platform.serving.model_cache import ChampionCache, CollectionClassifiers
from ml_platform.serving.options import ServeOptions, allowed_hosts
from ml_platform.serving.preload import Preloader
from ml_platform.serving.vision_models import SETTINGS_FACTORIES, ModelFactories, VisionModels
from ml_platform.settings import Settings, options_from
from ml_platform.store.layout import Layout
from ml_platform.store.search_cache import IndexCache
from ml_platform.vision.zero_shot import ZeroShotModel, ZeroShotUnavailableError

P = ParamSpec("P")
T = TypeVar("T")


INDEX_REFRESH_S = 5.0  # how often a replica looks for new search index segments


@dataclass
class ServingState:
    settings: Settings
    options: ServeOptions
    metrics: ServingMetrics
    champions: ChampionCache
    datasets: DatasetModelCache  # fine-tuned `dataset-<name>` champions (/v1/predict)
    models: VisionModels
    zero_shot: LazyModels[ZeroShotModel]
    image_hosts: frozenset[str]
    inference: ThreadPoolExecutor
    clusters: ClustersCache
    search_index: IndexCache  # the store's search index, refreshed every INDEX_REFRESH_S
    decode: DecodeOptions
    preloader: Preloader
    budget: ModelBudget  # memory of the models loaded on demand (LRU past it, TTL idle)

    @property
    def registry(self) -> MlflowClient:
        return self.champions.client

    async def infer(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking model work on the inference threads, off the event loop (in the
        caller's context: its trace span is the parent of what runs there)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(function, *args, **kwargs)
        return await loop.run_in_executor(self.inference, contextvars.copy_context().run, call)

    async def fetch_image(self, url: str) -> bytes:
        """The image at `url`, under this server's host allow-list, byte limit and deadline."""
        deadline = self.options.image_fetch_timeout_s
        async with httpx.AsyncClient(timeout=deadline) as client:
            return await images.fetch(
                client,
                url,
                hosts=self.image_hosts,
                max_bytes=self.settings.max_image_bytes,
                deadline_s=deadline,
            )


def build_state(
    settings: Settings,
    options: ServeOptions,
    factories: ModelFactories = SETTINGS_FACTORIES,
) -> ServingState:
    settings = with_home_rule(settings)  # a home the demo made offline allows random weights
    metrics = ServingMetrics()
    uri = settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    budget = ModelBudget(options.model_memory_mb << 20, options.model_ttl_s, metrics)
    root, refresh = settings.mlflow_artifact_root, options.refresh_interval_s
    champions = ChampionCache(CollectionClassifiers(client, root), refresh, metrics, budget=budget)
    datasets = DatasetModelCache(DatasetClassifiers(client, root), refresh, metrics, budget=budget)
    models = VisionModels(settings, metrics, factories, budget)
    return ServingState(
        settings=settings,
        options=options,
        metrics=metrics,
        champions=champions,
        datasets=datasets,
        models=models,
        zero_shot=LazyModels(
            CacheKind.ZERO_SHOT, metrics, (ZeroShotUnavailableError, OSError), budget
        ),
        image_hosts=allowed_hosts(settings, options),
        inference=ThreadPoolExecutor(
            max_workers=inference_threads(settings, options),
            thread_name_prefix="ml-platform-inference",
        ),
        clusters=ClustersCache(Layout.for_settings(settings)),
        search_index=IndexCache(Layout.for_settings(settings), INDEX_REFRESH_S),
        decode=options_from(DecodeOptions, settings),
        preloader=Preloader(champions, models, datasets, budget),
        budget=budget,
    )


def inference_threads(settings: Settings, options: ServeOptions) -> int:
    """With dynamic batching, enough threads for a full batch of requests to wait together
    (the forward pass itself runs once, on the batcher's thread)."""
    batching = settings.serve_batch_max if settings.serve_batch_max > 1 else 1
    return max(options.inference_workers, batching)


def state_of(request: Request) -> ServingState:
    state = request.app.state.serving
    assert isinstance(state, ServingState)
    return state
