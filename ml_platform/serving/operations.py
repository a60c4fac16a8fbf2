"""The analyze operations (classify, embed, detect), each answering or failing on its own."""

from __future__ import annotations

import base64
import io
import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from PIL import Image

from ml_platform import telemetry
from ml_platform.domain import Box, DerivativeType, WeightsStatus
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.serving.analysis import ImageAnalysis, StageClock
from ml_platform.serving.champion import Champion
from ml_platform.serving.errors import ErrorKind, ServingError
from ml_platform.serving.metrics import ServingMetrics, Stage
from ml_platform.serving.model_cache import ChampionCache
from ml_platform.serving.schemas import (
    BoxModel,
    ClassifyOperation,
    ClassifyResult,
    DetectOperation,
    DetectResult,
    EmbedderInfo,
    EmbedOperation,
    EmbedResult,
    FocusModel,
    Operation,
    OperationError,
    OperationOutcome,
    OperationResult,
)
from ml_platform.serving.vision_models import VisionModels
from ml_platform.vision.embedders import Embedder
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.identity import EmbedderIdentity, EmbedderKey

log = logging.getLogger(__name__)
Champions = Mapping[int, Champion | ServingError]
CROP_JPEG_QUALITY = 90


def resolve_champions(
    operations: Sequence[Operation], cache: ChampionCache, clock: StageClock
) -> dict[int, Champion | ServingError]:
    """The champion (or why there is none) of every collection the operations classify.

    Registry I/O happens here, apart from inference, so a slow registry never holds the
    inference thread.
    """
    wanted = dict.fromkeys(
        op.collection_id for op in operations if isinstance(op, ClassifyOperation)
    )
    with clock.measure(Stage.CLASSIFICATION):
        return {cid: _champion_or_error(cache, cid) for cid in wanted}


def _champion_or_error(cache: ChampionCache, collection_id: int) -> Champion | ServingError:
    try:
        return cache.get(collection_id)
    except ServingError as exc:
        return exc


def run_operations(
    operations: Sequence[Operation],
    analysis: ImageAnalysis,
    champions: Champions,
    metrics: ServingMetrics,
) -> list[OperationOutcome]:
    """Every operation in order; an error becomes that operation's error only. One span
    around them all (their counts and the classification time as attributes): the stages
    where time goes (detection, embedding, the forward pass) nest in it as spans; a span per
    operation would cost more than a cached classify does."""
    outcomes = []
    before = analysis.clock.seconds[Stage.CLASSIFICATION]
    with telemetry.span("operations", dict(Counter(f"operations.{op.type}" for op in operations))):
        for operation in operations:
            with metrics.time_operation(operation.type, traced=False):
                outcome = _outcome(operation, analysis, champions)
            if outcome.error is not None:
                metrics.error(outcome.error.kind)
            outcomes.append(outcome)
        spent_ms = round((analysis.clock.seconds[Stage.CLASSIFICATION] - before) * 1000.0, 3)
        failed = sum(o.error is not None for o in outcomes)
        telemetry.set_attributes({"classification_ms": spent_ms, "errors": failed})
    return outcomes


def _outcome(
    operation: Operation, analysis: ImageAnalysis, champions: Champions
) -> OperationOutcome:
    try:
        result = run_operation(operation, analysis, champions)
    except ServingError as exc:
        error = OperationError(kind=exc.kind, status=exc.status, message=exc.message)
        return OperationOutcome(operation=operation, error=error)
    except Exception as exc:  # a bug or a model failure: this operation's 500, not the request's
        log.exception("operation %s failed", operation.type)
        error = OperationError(
            kind=ErrorKind.INTERNAL, status=500, message=f"{type(exc).__name__}: {exc}"
        )
        return OperationOutcome(operation=operation, error=error)
    return OperationOutcome(operation=operation, result=result)


def run_operation(
    operation: Operation, analysis: ImageAnalysis, champions: Champions
) -> OperationResult:
    if isinstance(operation, ClassifyOperation):
        return classify(operation, analysis, champions)
    if isinstance(operation, EmbedOperation):
        return embed(operation, analysis)
    return detect(operation, analysis)


def classify(
    operation: ClassifyOperation, analysis: ImageAnalysis, champions: Champions
) -> ClassifyResult:
    """The champion's focus decides the crop and embedding; its dimensionality must match."""
    champion = champions[operation.collection_id]
    if isinstance(champion, ServingError):
        raise champion
    focus = champion.focus
    with analysis.clock.measure(Stage.EMBEDDING, traced=False):  # a cache lookup, or a load
        key, embedder = embedder_for(champion, analysis.models)
    check_compatible(champion, embedder)
    vector = analysis.embedding(focus.derivative_type, key)
    with analysis.clock.measure(Stage.CLASSIFICATION, traced=False):  # a head: sub-millisecond
        prediction = champion.predict(vector)
    return ClassifyResult(
        collection_id=operation.collection_id,
        model_name=champion.info.name,
        model_version=champion.version,
        is_in_collection=prediction.is_in_collection,
        probability=prediction.probability,
        threshold=champion.threshold,
        focus=FocusModel.of(focus),
        box=box_model(analysis.box(focus.derivative_type)),
        embedder=embedder_info(embedder, focus.embedding_type),
        classifier_weights=champion.info.tags.get(VersionTag.WEIGHTS.value),
    )


def embedder_for(champion: Champion, models: VisionModels) -> tuple[str, Embedder]:
    """The champion's type on the backend it was trained with (its embedder identity names
    it). For a champion trained on random weights (the offline demo) whose configured
    embedder is pretrained or cannot load, the seeded random-weight embedder it was trained
    on, so its answers stay consistent."""
    key = weights_key(champion, models)
    return models.embedder_on(key, champion_backend(champion))


def champion_backend(champion: Champion) -> Backend | None:
    """The backend of the embeddings a champion was trained on (None: the type's native)."""
    try:
        return EmbedderIdentity.from_tags(champion.info.tags).backend
    except ValueError as exc:
        raise ServingError(
            ErrorKind.INCOMPATIBLE_CLASSIFIER,
            f"{champion.info.name} version {champion.version} has unreadable embedder tags "
            f"({exc}); fix the model-version tags in MLflow or register a new version",
        ) from exc


def weights_key(champion: Champion, models: VisionModels) -> EmbedderKey:
    """The embedder key for the champion's weights: its type, or its random variant."""
    key = EmbedderKey(champion.focus.embedding_type)
    if champion.weights is not WeightsStatus.RANDOM:
        return key
    try:
        embedder = models.embedder(key)
    except ServingError as exc:
        if exc.kind is not ErrorKind.MODEL_UNAVAILABLE:
            raise
    else:
        if embedder.weights is WeightsStatus.RANDOM:
            return key
    return EmbedderKey(key.embedding_type, random=True)


def check_compatible(champion: Champion, embedder: Embedder) -> None:
    """Refuse (409) a classifier whose input width, backend or weights differ from the
    embedder's: a mismatch is never served silently."""
    info = champion.info
    where = f"collection {champion.collection_id}'s champion ({info.name} v{info.version})"
    if embedder.dim != champion.dimensionality:
        raise ServingError(
            ErrorKind.INCOMPATIBLE_CLASSIFIER,
            f"{where} expects {champion.dimensionality}-d {champion.focus.embedding_type} "
            f"embeddings but this server's embedder ({embedder.model_id}) makes {embedder.dim}-d "
            "ones; configure the embedder it was trained with, or retrain the classifier",
        )
    wanted, served = champion_backend(champion), EmbedderIdentity.of(embedder).backend
    if wanted != served:
        raise ServingError(
            ErrorKind.INCOMPATIBLE_CLASSIFIER,
            f"{where} was trained on {_backend_name(wanted)} {champion.focus.embedding_type} "
            f"embeddings but this server can only give {_backend_name(served)} ones (the "
            f"drift check refused that backend here, see the log); set "
            "ML_PLATFORM_EMBED_BACKENDS (type=backend) for this type, or re-embed and retrain",
        )
    if champion.weights is not None and champion.weights != embedder.weights:
        raise ServingError(
            ErrorKind.INCOMPATIBLE_CLASSIFIER,
            f"{where} was trained on {champion.weights.value} {champion.focus.embedding_type} "
            f"weights but this server's embedder has {embedder.weights.value} weights; "
            "its answers would be meaningless",
        )


def _backend_name(backend: Backend | None) -> str:
    return backend.value if backend is not None else "native"


def embed(operation: EmbedOperation, analysis: ImageAnalysis) -> EmbedResult:
    with analysis.clock.measure(Stage.EMBEDDING, traced=False):
        embedder = analysis.models.embedder(operation.embedding_type)
    vector = analysis.embedding(operation.target, operation.embedding_type)
    return EmbedResult(
        target=operation.target,
        box=box_model(analysis.box(operation.target)),
        embedder=embedder_info(embedder, operation.embedding_type),
        vector=[float(x) for x in vector],
    )


def detect(operation: DetectOperation, analysis: ImageAnalysis) -> DetectResult:
    detection = analysis.detection()
    box = analysis.box(operation.target)
    crop = None
    if operation.include_crop and box is not None:
        crop = jpeg_base64(analysis.derivative(operation.target))
    face = operation.target is DerivativeType.PROMINENT_FACE
    return DetectResult(
        target=operation.target,
        found=box is not None,
        box=box_model(box),
        detector=detection.face_detector if face else detection.person_detector,
        faces_found=detection.faces_found,
        crop_base64=crop,
    )


def embedder_info(embedder: Embedder, embedding_type: str) -> EmbedderInfo:
    return EmbedderInfo(
        embedding_type=embedding_type,
        model_id=embedder.model_id,
        revision=embedder.revision,
        weights=embedder.weights,
        dim=embedder.dim,
    )


def box_model(box: Box | None) -> BoxModel | None:
    if box is None:
        return None
    return BoxModel(x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1, score=box.score)


def jpeg_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=CROP_JPEG_QUALITY)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
