"""Request and response bodies of the serving API (pydantic; malformed input is a 422)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.config import JsonDict

from ml_platform.domain import DerivativeType, Focus, WeightsStatus
from ml_platform.serving.errors import ErrorKind

DetectTarget = Literal[DerivativeType.PROMINENT_PERSON, DerivativeType.PROMINENT_FACE]


MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=0, le=MAX_ID)]  # a collection, pet or image id in a route's path


class _Strict(BaseModel):
    """Request bodies: unknown fields and coercions (`0` for false, `"1"` for 1) are 422s."""

    model_config = ConfigDict(extra="forbid", strict=True)


# Optional in Python, but never `null` on the wire: the schema says "a string, if present".
OptionalText = Annotated[str | None, WithJsonSchema({"type": "string"})]
OptionalUrl = Annotated[str | None, WithJsonSchema({"type": "string", "maxLength": 4096})]


class _Operation(_Strict):
    """An operation; also accepted in image_embed's shape, `{"type": ..., "params": {...}}`."""

    @model_validator(mode="before")
    @classmethod
    def _image_embed_params(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "params" not in data:
            return data
        params = data["params"]
        if not isinstance(params, dict):
            raise ValueError("`params` must be an object of the operation's fields")
        rest = {key: value for key, value in data.items() if key != "params"}
        clash = sorted(set(rest) & set(params))
        if clash:
            raise ValueError(f"{clash} given both at the top level and in `params`")
        return {**rest, **params}


class ClassifyOperation(_Operation):
    """Is the image in collection `collection_id`? The champion's tags decide crop and embedding."""

    type: Literal["classify"]
    collection_id: int = Field(ge=0, le=MAX_ID)


class EmbedOperation(_Operation):
    """The `embedding_type` embedding of the whole image or of a prominent person/face crop."""

    type: Literal["embed"]
    embedding_type: str = Field(min_length=1)
    target: DerivativeType = DerivativeType.WHOLE_IMAGE


class DetectOperation(_Operation):
    """The prominent person or face box; the crop as base64 JPEG when `include_crop`."""

    type: Literal["detect"]
    target: DetectTarget
    include_crop: bool = False


Operation = Annotated[
    ClassifyOperation | EmbedOperation | DetectOperation, Field(discriminator="type")
]


class AnalyzeOperations(_Strict):
    """The operations of an analyze request (the multipart `operations` field holds the list)."""

    operations: list[Operation] = Field(min_length=1)


def _exactly_one_image(base64: str | None, url: str | None, what: str) -> None:
    if (base64 is None) == (url is None):
        raise ValueError(f"{what} needs exactly one of image_base64 or image_url")


ONE_IMAGE_SCHEMA: JsonDict = {
    "oneOf": [
        {"required": ["image_base64"], "not": {"required": ["image_url"]}},
        {"required": ["image_url"], "not": {"required": ["image_base64"]}},
    ]
}


class AnalyzeRequest(AnalyzeOperations):
    """JSON body of `POST /v1/analyze`: one image (base64 or URL) and its operations."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=ONE_IMAGE_SCHEMA)

    image_base64: OptionalText = None
    image_url: OptionalUrl = Field(None, max_length=4096)

    @model_validator(mode="after")
    def _one_image(self) -> AnalyzeRequest:
        _exactly_one_image(self.image_base64, self.image_url, "a JSON analyze request")
        return self


class FocusModel(BaseModel):
    derivative_type: DerivativeType
    embedding_type: str

    @classmethod
    def of(cls, focus: Focus) -> FocusModel:
        return cls(derivative_type=focus.derivative_type, embedding_type=focus.embedding_type)


class BoxModel(BaseModel):
    x0: float
    y0: float
    x1: float
    y1: float
    score: float


class EmbedderInfo(BaseModel):
    embedding_type: str
    model_id: str
    revision: str
    weights: WeightsStatus
    dim: int


class ClassifyResult(BaseModel):
    type: Literal["classify"] = "classify"
    collection_id: int
    model_name: str
    model_version: str
    is_in_collection: bool
    probability: float
    threshold: float | None
    focus: FocusModel
    box: BoxModel | None = Field(None, description="The crop classified (None: whole image).")
    embedder: EmbedderInfo
    classifier_weights: str | None = Field(None, description="weights tag of the model version")


class EmbedResult(BaseModel):
    type: Literal["embed"] = "embed"
    target: DerivativeType
    box: BoxModel | None
    embedder: EmbedderInfo
    vector: list[float]


class DetectResult(BaseModel):
    type: Literal["detect"] = "detect"
    target: DerivativeType
    found: bool
    box: BoxModel | None
    detector: str
    faces_found: int
    crop_base64: str | None = None


OperationResult = Annotated[
    ClassifyResult | EmbedResult | DetectResult, Field(discriminator="type")
]


class OperationError(BaseModel):
    kind: ErrorKind
    status: int
    message: str


class OperationOutcome(BaseModel):
    """One operation, in request order: its result, or its own error."""

    operation: Operation
    result: OperationResult | None = None
    error: OperationError | None = None


class RequestTimings(BaseModel):
    """Milliseconds spent on one request: every image route's timings start with these."""

    fetch_ms: float = 0.0
    decode_ms: float = 0.0


class AnalyzeTimings(RequestTimings):
    detection_ms: float = 0.0
    embedding_ms: float = 0.0
    classification_ms: float = 0.0
    total_ms: float = 0.0


class ImageInfo(BaseModel):
    """The size analysed (boxes refer to it) and the size sent, when it was reduced."""

    width: int
    height: int
    original_width: int | None = None
    original_height: int | None = None


class AnalyzeResponse(BaseModel):
    """`detail` is set when every operation failed (the HTTP status is then the first error's)."""

    image: ImageInfo | None = None
    results: list[OperationOutcome]
    timings_ms: AnalyzeTimings
    detail: str | None = None


class ZeroShotImage(_Strict):
    """One image of a zero-shot request: an id and exactly one of image_base64 or url."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["image_base64"], "not": {"required": ["url"]}},
                {"required": ["url"], "not": {"required": ["image_base64"]}},
            ]
        },
    )

    id: str = Field(min_length=1, max_length=256)
    url: OptionalUrl = Field(None, max_length=4096)
    image_base64: OptionalText = None

    @model_validator(mode="after")
    def _one_image(self) -> ZeroShotImage:
        _exactly_one_image(self.image_base64, self.url, f"zero-shot image {self.id!r}")
        return self


class ZeroShotRequest(_Strict):
    """Body of `POST /v1/zero-shot` (the multipart `request` field holds it; files add images)."""

    model: Literal["clip", "siglip"]
    images: list[ZeroShotImage] = Field(default_factory=list)
    classes: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        min_length=1, json_schema_extra={"uniqueItems": True}
    )
    top_k: int = Field(5, ge=1)
    threshold: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _unique_classes_and_ids(self) -> ZeroShotRequest:
        duplicates = _repeated(self.classes)
        if duplicates:
            raise ValueError(f"classes must be unique; repeated: {duplicates[:10]}")
        repeated = _repeated([image.id for image in self.images])
        if repeated:
            raise ValueError(f"image ids must be unique; repeated: {repeated[:10]}")
        return self


def _repeated(values: list[str]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


class ClassScore(BaseModel):
    """A class (label) and the model's confidence in it: zero-shot and predict answers."""

    label: str
    confidence: float


class ZeroShotImageResult(BaseModel):
    """Top-k classes with confidence >= threshold, best first; or this image's error."""

    id: str
    predictions: list[ClassScore] = Field(default_factory=list)
    error: OperationError | None = None


class InferenceTimings(RequestTimings):
    """The timings of a route that runs one model (`/v1/predict`, `/v1/zero-shot`)."""

    inference_ms: float = 0.0
    total_ms: float = 0.0


class ZeroShotResponse(BaseModel):
    model: Literal["clip", "siglip"]
    model_id: str | None = None
    weights: WeightsStatus | None = None
    scoring: Literal["softmax", "sigmoid"]
    results: list[ZeroShotImageResult]
    timings_ms: InferenceTimings
    detail: str | None = None


class ClassifierInfo(BaseModel):
    """A collection's champion as the registry describes it, and what this server has loaded."""

    collection_id: int
    model_name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    focus: FocusModel | None
    loaded_version: str | None = Field(None, description="the version this server serves now")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """`loading` and `unavailable` (nothing can be served) are 503; `degraded` is 200: some
    models failed (listed in `failing`, each with its reason in `models`), the rest serve.
    `warnings` never change the status."""

    status: Literal["ready", "loading", "degraded", "unavailable"]
    reasons: list[str] = Field(default_factory=list)
    models: dict[str, str] = Field(
        default_factory=dict,
        description="each model this server knows of -> `ok: ...` or `failed: <why>`",
    )
    failing: list[str] = Field(default_factory=list, description="the models that failed")
    warnings: list[str] = Field(
        default_factory=list,
        description="what does not change the status: set while this server may answer "
        "with random weights (why, and that such answers say weights=random)",
    )
    loaded_classifiers: dict[str, str] = Field(
        default_factory=dict, description="collection id -> version served"
    )
    loaded_models: dict[str, int] = Field(
        default_factory=dict,
        description="every model loaded on demand (`<cache> <key>`) -> its estimated bytes",
    )
    model_memory_bytes: int = Field(0, description="estimated memory of the loaded models")
    model_memory_budget_bytes: int = Field(0, description="ML_PLATFORM_SERVE_MODEL_MEMORY_MB")
    champions_known: int = Field(
        0, description="collection champions in the start-up index (loaded or not)"
    )
