"""Serving fixtures: a real MLflow sqlite registry, tiny random embedders, a stub detector.

The embedders are the real CLIP and DINOv2 embedder classes with tiny random configurations
(`build_random_embedder`), wrapped in a spy that counts what reaches them. The detector is a
stub with fixed boxes so that face and person cases are deterministic without photos; one
test in test_analyze.py runs the real detector on a shared face photo when present.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from PIL import Image
from sklearn.linear_model import LogisticRegression

from ml_platform.domain import Box, BuiltinEmbeddingType, DerivativeType, WeightsStatus
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.model_registry.collection.register import (
    ClassifierPayload,
    log_and_register,
    promote,
)
from ml_platform.serving import ModelFactories, ServeOptions, create_app
from ml_platform.settings import Settings
from ml_platform.vision.detectors import DetectionResult
from ml_platform.vision.embedders import Embedder, build_random_embedder

CLIP = BuiltinEmbeddingType.CLIP_VIT_B_32.value
DINO = BuiltinEmbeddingType.DINO_V2.value
CLIP_DIM = 24
DINO_DIM = 40
FACE_BOX = Box(20.0, 10.0, 52.0, 42.0, 0.9)
PERSON_BOX = Box(8.0, 4.0, 60.0, 46.0, 0.8)


def tiny_embedders() -> dict[str, Embedder]:
    from transformers import CLIPVisionConfig, Dinov2Config

    layers: dict[str, Any] = {"num_hidden_layers": 1, "num_attention_heads": 2}
    clip = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        image_size=32,
        patch_size=16,
        projection_dim=CLIP_DIM,
        **layers,
    )
    dino = Dinov2Config(hidden_size=DINO_DIM, mlp_ratio=1, image_size=32, patch_size=16, **layers)
    return {CLIP: build_random_embedder(CLIP, clip), DINO: build_random_embedder(DINO, dino)}


class SpyEmbedder:
    """A real embedder that records the image sizes it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.model_id, self.revision = inner.name, inner.model_id, inner.revision
        self.weights: WeightsStatus = inner.weights
        self.dim = inner.dim
        self.sizes: list[tuple[int, int]] = []

    @property
    def calls(self) -> int:
        return len(self.sizes)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:  # type: ignore[type-arg]
        self.sizes.extend(image.size for image in images)  # serving batches preprocess first
        return self.inner.preprocess(images)

    def embed_preprocessed(self, pixels: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        return self.inner.embed_preprocessed(pixels)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:  # type: ignore[type-arg]
        return self.inner.embed_preprocessed(self.preprocess(images))


@dataclass
class StubDetector:
    """Fixed boxes (a test double for the OpenCV detector); counts its calls."""

    face: Box | None = FACE_BOX
    person: Box | None = PERSON_BOX
    calls: int = 0

    def detect(self, image: Image.Image) -> DetectionResult:
        self.calls += 1
        faces = 0 if self.face is None else 1
        return DetectionResult(self.person, self.face, "stub-person", "stub-face", faces)


@dataclass
class Store:
    """A real MLflow sqlite tracking + registry store with helpers to register classifiers."""

    root: Path
    uri: str
    client: MlflowClient
    registered: dict[int, str] = field(default_factory=dict)

    def register(
        self,
        collection_id: int,
        derivative: DerivativeType,
        embedding_type: str,
        dim: int,
        *,
        weights: WeightsStatus = WeightsStatus.RANDOM,
        champion: bool = True,
    ) -> str:
        """Log a small logistic regression as a classifier version; promote it when asked."""
        rng = np.random.default_rng(collection_id)
        X = rng.normal(size=(16, dim)).astype(np.float32)
        estimator = LogisticRegression().fit(X, np.arange(16) % 2)
        tags: dict[str, str] = {
            VersionTag.COLLECTION_ID: str(collection_id),
            VersionTag.DERIVATIVE_TYPE: derivative.value,
            VersionTag.EMBEDDING_TYPE: embedding_type,
            VersionTag.DIMENSIONALITY: str(dim),
            VersionTag.THRESHOLD: "0.5",
            VersionTag.WEIGHTS: weights.value,
        }
        payload = ClassifierPayload(estimator, 0.5, dim, collection_id, tags, {}, {})
        # log_and_register resolves the new version's `models:/m-...` source with the
        # process-wide tracking URI, so point it at this store while registering.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", self.uri)
            version = log_and_register(
                self.client, payload, artifact_location=str(self.root / "artifacts")
            ).version
        if champion:
            promote(self.client, collection_id, version, "test")
        return version


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return new_store(tmp_path_factory.mktemp("mlflow"))


def new_store(root: Path) -> Store:
    """Collections 1 (CLIP whole image), 2 (DINOv2 face), 3 (CLIP whole image, again).

    The session's `store` is one of these, shared (and added to) by the serving tests; a test
    that needs to know every champion in the registry makes its own."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    store = Store(root, uri, MlflowClient(tracking_uri=uri, registry_uri=uri))
    store.register(1, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    store.register(2, DerivativeType.PROMINENT_FACE, DINO, DINO_DIM)
    store.register(3, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    return store


@pytest.fixture(scope="session")
def embedders() -> dict[str, Embedder]:
    return tiny_embedders()


@dataclass
class Harness:
    """A TestClient on a real app plus the spies behind it."""

    client: TestClient
    spies: dict[str, SpyEmbedder]
    detector: Any  # a StubDetector unless the test passed a real one
    settings: Settings


AppFactory = Callable[..., Harness]


@pytest.fixture
def make_app(store: Store, embedders: dict[str, Embedder], tmp_path: Path) -> Iterator[AppFactory]:
    """An app on the session store; keyword arguments override settings.

    `spy_embedders=False` keeps the app's own embedders (`build_embedder` with the settings).
    """
    clients: list[TestClient] = []

    def build(
        options: ServeOptions | None = None,
        detector: Any = None,
        spy_embedders: bool = True,
        **overrides: object,
    ) -> Harness:
        fields: dict[str, Any] = {
            "home": tmp_path / "home",
            "mlflow_tracking_uri": store.uri,
            "allow_random_weights": True,
            **overrides,
        }
        settings = Settings(**fields)
        spies = {name: SpyEmbedder(embedder) for name, embedder in embedders.items()}
        stub = detector or StubDetector()
        app = create_app(
            settings,
            options or ServeOptions(refresh_interval_s=0.0),
            factories=ModelFactories(
                embedder=(lambda name: spies[name]) if spy_embedders else None,
                detector=lambda: stub,
            ),
        )
        client = TestClient(app)
        clients.append(client)
        return Harness(client, spies, stub, settings)

    yield build
    for client in clients:
        client.close()


def image_bytes(size: tuple[int, int] = (64, 48), fmt: str = "JPEG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def analyze_json(image: bytes, *operations: dict[str, object]) -> dict[str, object]:
    return {"image_base64": b64(image), "operations": list(operations)}
