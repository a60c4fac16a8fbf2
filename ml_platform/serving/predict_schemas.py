"""Request and response bodies of `POST /v1/predict` (fine-tuned dataset classifiers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from ml_platform.services.datasets import NAME_PATTERN
from ml_platform.services.label_provenance import LabelWeights
from ml_platform.serving.schemas import ClassScore, InferenceTimings

MAX_TOP_K = 100
DATASET_NAME = NAME_PATTERN.pattern  # what a datasets file may declare
DATASET_DESCRIPTION = "a dataset name: lower-case letters, digits, '-' or '_'"


class PredictRequest(BaseModel):
    """JSON body: the dataset whose champion answers, one image (base64 or URL), top_k."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=DATASET_NAME, description=DATASET_DESCRIPTION)
    image_base64: str | None = None
    image_url: str | None = Field(None, max_length=4096)
    top_k: StrictInt = Field(5, ge=1, le=MAX_TOP_K)  # `true` is not 1

    @model_validator(mode="after")
    def _one_image(self) -> PredictRequest:
        if (self.image_base64 is None) == (self.image_url is None):
            raise ValueError("a predict request needs exactly one of image_base64 or image_url")
        return self


class MultipartFields(BaseModel):
    """The text fields of a multipart predict request (the image is the `image` file)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=DATASET_NAME, description=DATASET_DESCRIPTION)
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)  # form text: "3" is 3


class PredictResponse(BaseModel):
    dataset: str
    model_name: str
    model_version: str
    model_variant: str = Field(
        description="runtime of the forward pass: torch, onnx or onnx-int8 (checked at "
        "registration against the network; part of the model's identity)"
    )
    predictions: list[ClassScore]
    timings_ms: InferenceTimings
    label_weights: LabelWeights = Field(
        description="which weights suggested the model's training labels (its `label_weights` "
        "tag): random (some came from random-weight suggestions: they carry no meaning), "
        "unknown (not recorded), pretrained (suggestions from pretrained weights), none (every "
        "label is crawlr membership)"
    )
    labels: str | None = Field(
        None,
        description="a sentence when the training labels are random or unrecorded, e.g. "
        "'from random-weight suggestions (3 of 27 labels): ...'; null otherwise",
    )
