"""Serving errors: one exception type whose kind decides the HTTP status and the metric label."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What went wrong, as clients and the `errors_total` metric see it."""

    INVALID_IMAGE = "invalid_image"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_HOST_NOT_ALLOWED = "image_host_not_allowed"
    IMAGE_FETCH_FAILED = "image_fetch_failed"
    IMAGE_FETCH_TIMEOUT = "image_fetch_timeout"
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    COLLECTION_NOT_FOUND = "collection_not_found"
    PET_NOT_FOUND = "pet_not_found"
    DATASET_NOT_FOUND = "dataset_not_found"
    IMAGE_NOT_FOUND = "image_not_found"
    UNKNOWN_EMBEDDING_TYPE = "unknown_embedding_type"
    NO_DETECTION = "no_detection"
    INCOMPATIBLE_CLASSIFIER = "incompatible_classifier"
    MODEL_UNAVAILABLE = "model_unavailable"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    INTERNAL = "internal"


STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_IMAGE: 400,
    ErrorKind.IMAGE_TOO_LARGE: 413,
    ErrorKind.IMAGE_HOST_NOT_ALLOWED: 403,
    ErrorKind.IMAGE_FETCH_FAILED: 502,
    ErrorKind.IMAGE_FETCH_TIMEOUT: 504,
    ErrorKind.INVALID_REQUEST: 422,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.COLLECTION_NOT_FOUND: 404,
    ErrorKind.PET_NOT_FOUND: 404,
    ErrorKind.DATASET_NOT_FOUND: 404,
    ErrorKind.IMAGE_NOT_FOUND: 404,
    ErrorKind.UNKNOWN_EMBEDDING_TYPE: 422,
    ErrorKind.NO_DETECTION: 422,
    ErrorKind.INCOMPATIBLE_CLASSIFIER: 409,
    ErrorKind.MODEL_UNAVAILABLE: 503,
    ErrorKind.REGISTRY_UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}


class ServingError(Exception):
    """A request (or one operation of it) cannot be answered; `message` says why and what to do."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.kind]

    def fresh(self) -> ServingError:
        """The same error as a new object, with no traceback or cause attached."""
        return ServingError(self.kind, self.message)


def registry_unreachable(exc: BaseException) -> ServingError:
    """The 503 a route answers when a call to the model registry failed with `exc`."""
    return ServingError(ErrorKind.REGISTRY_UNAVAILABLE, f"the model registry is unreachable: {exc}")
