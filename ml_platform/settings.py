"""One typed settings object for the whole platform (environment prefix ``ML_PLATFORM_``).

Everything lives under ``ML_PLATFORM_HOME`` unless a setting points elsewhere. Settings are
read when ``Settings()`` is constructed (at run time), never at import time.
"""

from __future__ import annotations

import dataclasses
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_HOME = Path("~/.ml-platform")
OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


class ExecutorKind(StrEnum):
    """Where a run's steps execute (``ML_PLATFORM_EXECUTOR``)."""

    IN_PROCESS = "in_process"
    MULTIPROCESS = "multiprocess"
    CELERY = "celery"
    K8S = "k8s"
    DOCKER = "docker"


class Settings(BaseSettings):
    """Platform settings. Every field can be set as ``ML_PLATFORM_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ML_PLATFORM_", extra="ignore")

    home: Path = Field(DEFAULT_HOME, description="Root directory for all platform state.")
    crawlr: str | None = Field(
        None,
        description="crawlr source: an http(s) base URL or a snapshot directory. "
        "Default: the sample snapshot under home (written by `ml-platform demo`).",
    )
    crawlr_timeout_s: float = Field(10.0, description="HTTP timeout per crawlr request.")
    crawlr_retries: int = Field(3, description="Retries on connect errors, timeouts and 5xx.")
    crawlr_page_size: int = Field(200, description="Images requested per crawlr page.")
    batch_max_images: int = Field(500, description="Most images in one ingestion batch.")
    label_rescan_interval_s: float = Field(
        21600.0,
        description="Where crawlr has no GET /labels.json (404), the labels of the whole image "
        "feed are re-read, paged, this often (seconds).",
    )
    metadata_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the platform metadata database (batch assignments, "
        "attempts, claims): sqlite under home by default, or postgresql://...",
    )
    download_max_attempts: int = Field(
        4, description="Attempts at a failing image download before it is quarantined."
    )
    download_retry_backoff_s: float = Field(
        60.0, description="First retry delay of a failed download; doubles each attempt."
    )
    claim_lease_s: float = Field(
        3600.0, description="How long a run's claim on a partition holds if it dies."
    )
    max_image_bytes: int = Field(30_000_000, description="Larger downloads are rejected.")
    max_image_pixels: int = Field(50_000_000, description="Decompression-bomb limit (w*h).")
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI. Default: MLFLOW_TRACKING_URI if set, "
        "else a sqlite file under home.",
    )
    mlflow_ui_url: str = Field(
        "http://127.0.0.1:5000", description="Base URL of the MLflow UI, for links in Dagster."
    )
    allow_random_weights: bool = Field(
        False,
        description="Use randomly initialised embedders when pretrained weights cannot be "
        "loaded. Outputs are then tagged weights=random everywhere.",
    )
    clip_model: str = Field(
        "openai/clip-vit-base-patch32", description="CLIP hub id or local directory."
    )
    dino_model: str = Field("facebook/dinov2-small", description="DINOv2 hub id or local dir.")
    embedding_types_file: Path | None = Field(
        None, description="YAML file declaring custom ONNX embedding types."
    )
    yunet_model: Path | None = Field(
        None, description="YuNet face detector ONNX file; Haar cascade fallback when unset."
    )
    person_detector_onnx: Path | None = Field(
        None, description="YOLO-layout ONNX person detector; HOG fallback when unset."
    )
    cluster_focus: str = Field(
        "whole_image__embed_clip_vit_b_32",
        description="Focus (derivative__embedding type) whose embeddings pets are clustered on.",
    )
    embed_batch_size: int = Field(32, description="Images per embedding forward pass.")
    device: str = Field("cpu", description="torch device for embedders (cpu, cuda).")
    serve_token: str | None = Field(None, description="Bearer token required on /v1 routes.")
    serve_refresh_interval_s: float = Field(
        30.0, description="How often a served champion's alias is re-checked (promotion/rollback)."
    )
    serve_allowed_image_hosts: str | None = Field(
        None,
        description="Comma-separated hosts `image_url` may be fetched from (default: crawlr's "
        "host when crawlr is an http URL); an empty string forbids image_url.",
    )
    siglip_model: str = Field(
        "google/siglip-base-patch16-224", description="SigLIP hub id or local dir (zero-shot)."
    )
    datasets_file: Path | None = Field(
        None, description="YAML file declaring labelled datasets (default: <home>/datasets.yaml)."
    )
    max_image_side: int = Field(20_000, description="Longest side an image may have (pixels).")
    max_image_aspect_ratio: float = Field(
        30.0, description="Largest long-side / short-side ratio an image may have."
    )
    serve_max_decode_side: int = Field(
        4096,
        description="Serving analyses images reduced to at most this many pixels on the "
        "longest side (JPEG decodes at the reduced scale).",
    )
    serve_preload: bool = Field(
        True,
        description="At serving start-up, index every champion (bulk registry searches), run "
        "the detector once and load the most used champions with their embedders within the "
        "model memory budget; /readyz is 503 until then.",
    )
    serve_model_memory_mb: int = Field(
        4096,
        description="Memory budget of the models a server loads on demand (champions, dataset "
        "models, embedders, zero-shot): past it the least recently used are unloaded.",
    )
    serve_model_ttl_s: float = Field(
        1800.0, description="A served model idle this long is unloaded (0: never)."
    )
    crawlr_image_hosts: str | None = Field(
        None,
        description="Comma-separated extra hosts image downloads may come from (crawlr's own "
        "host is always allowed); redirects to other hosts are refused.",
    )
    crawlr_image_deadline_s: float = Field(
        60.0, description="Most seconds one image download may take in all (not per read)."
    )

    @field_validator(
        "crawlr_page_size", "batch_max_images", "max_image_bytes", "max_image_pixels",
        "embed_batch_size", "max_image_side", "serve_max_decode_side", "download_max_attempts",
        "serve_model_memory_mb",
    )  # fmt: skip
    @classmethod
    def _positive_int(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be a positive integer, got {value}")
        return value

    @field_validator("crawlr_retries")
    @classmethod
    def _non_negative_int(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be 0 or more, got {value}")
        return value

    @field_validator(
        "crawlr_timeout_s", "crawlr_image_deadline_s", "claim_lease_s", "label_rescan_interval_s"
    )
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"must be a positive number of seconds, got {value}")
        return value

    @field_validator("serve_refresh_interval_s", "download_retry_backoff_s", "serve_model_ttl_s")
    @classmethod
    def _non_negative_seconds(cls, value: float) -> float:
        if not value >= 0:
            raise ValueError(f"must be 0 or more seconds, got {value}")
        return value

    @field_validator("max_image_aspect_ratio")
    @classmethod
    def _aspect(cls, value: float) -> float:
        if not value >= 1:
            raise ValueError(f"must be at least 1 (long side / short side), got {value}")
        return value

    @field_validator("mlflow_ui_url", "dagster_ui_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("alert_webhook_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @field_validator("crawlr")
    @classmethod
    def _crawlr_source(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("http://", "https://")):
            return None if value is None else _check_http_url(value)
        if not Path(value).expanduser().is_dir():
            raise ValueError(
                f"{value!r} is neither an http(s) URL nor an existing snapshot directory"
            )
        return value

    @field_validator("embedding_types_file", "yunet_model", "person_detector_onnx")
    @classmethod
    def _existing_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @field_validator("serve_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "is set but empty, which would leave the API open; set a token or unset it"
            )
        return value

    face_quality_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="prominent_face images whose face quality (vision.faces.quality, 0-1) is "
        "below this are left out of classifier training; 0 keeps every face.",
    )
    store_url: str | None = Field(
        None,
        description="Where asset outputs (data/) and images (images/) live: a local directory "
        "or s3://bucket/prefix. Default: home.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint for store_url and MLflow artifacts (MinIO, moto); "
        "unset: AWS. Credentials come from the standard AWS_* variables.",
    )
    mlflow_artifacts: str | None = Field(
        None,
        description="MLflow artifact root for new experiments: a directory or s3://... "
        "Default: <home>/mlflow/artifacts (an http tracking server keeps its own).",
    )
    embed_backend: str = Field(
        "auto",
        description="Embedder backend: torch, onnx, onnx-int8, or auto (the fastest whose drift "
        "check passes). ONNX models are exported once and cached under home/models/onnx.",
    )
    embed_backends: str = Field(
        "",
        description="Per embedding type backends, comma-separated type=backend pairs: "
        "embed_dino_v2=torch,embed_clip_vit_b_32=onnx-int8.",
    )
    embed_int8_mode: str = Field(
        "auto",
        description="INT8 quantisation: dynamic, static (calibrated), or auto (both, "
        "the faster that passes the drift check).",
    )
    embed_loader_threads: int = Field(
        0, description="Threads decoding and preprocessing images for embedding (0: by cores)."
    )
    serve_batch_max: int = Field(
        16, description="Most images in one batched embedding forward pass while serving."
    )
    serve_batch_wait_ms: float = Field(
        2.0,
        description="How long a serving batch waits for more requests once the model is free "
        "(0 disables dynamic batching).",
    )

    @property
    def type_backends(self) -> tuple[tuple[str, str], ...]:
        """``embed_backends`` as sorted (type, backend) pairs; ValueError on a malformed one."""
        pairs = []
        for item in filter(None, (part.strip() for part in self.embed_backends.split(","))):
            name, sep, backend = item.partition("=")
            if not sep or not name.strip() or not backend.strip():
                raise ValueError(
                    f"ML_PLATFORM_EMBED_BACKENDS: {item!r} is not type=backend "
                    "(e.g. embed_dino_v2=torch)"
                )
            pairs.append((name.strip(), backend.strip()))
        return tuple(sorted(pairs))

    @property
    def onnx_cache_dir(self) -> Path:
        return self.resolved_home / "models" / "onnx"

    @property
    def image_hosts(self) -> tuple[str, ...] | None:
        """``serve_allowed_image_hosts`` split at commas (None: unset; (): none allowed)."""
        hosts = self.serve_allowed_image_hosts
        return None if hosts is None else tuple(filter(None, hosts.split(",")))

    executor: ExecutorKind | None = Field(
        None,
        description="Where steps execute: in_process, multiprocess, celery, k8s, docker. "
        "Unset: multiprocess for runs the daemon/UI launch, in-process for `ml-platform run`.",
    )
    celery_broker_url: str | None = Field(
        None, description="Celery broker (e.g. redis://host:6379/0); required for executor=celery."
    )
    celery_backend_url: str | None = Field(
        None,
        description="Celery result backend. Default: the broker URL for redis://, else rpc://.",
    )
    # -- champion health and alerts (services.champion_health, ml_platform/alerts.py) ------------
    health_min_fresh_labels: int = Field(
        20,
        ge=2,
        description="Fresh labels (made after a champion's training) needed before the "
        "champion is re-evaluated on them.",
    )
    health_max_ap_drop: float = Field(
        0.05,
        ge=0.0,
        description="The champion_health check WARNs when fresh AP is more than this below "
        "the training CV AP and the bootstrap upper bound is below that line too.",
    )
    health_ap_floor: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The champion_health check ERRORs when even the bootstrap upper bound "
        "of fresh AP is below this floor.",
    )
    health_alpha: float = Field(
        0.005,
        gt=0.0,
        lt=1.0,
        description="The champion_health check WARNs when the newest fresh labels disagree "
        "with the champion more than its out-of-fold labels did at this level (a permutation "
        "test): the false-alarm rate per evaluation it allows.",
    )
    drift_alpha: float = Field(
        0.005,
        gt=0.0,
        lt=1.0,
        description="The batch_drift check WARNs when a batch's tests reject 'no drift' at "
        "this family-wise level: the false-alarm rate per clean batch it allows.",
    )
    drift_reference_size: int = Field(
        500,
        ge=10,
        description="At most this many training-time embeddings (a seeded sample) are the "
        "reference each batch of a focus is compared to.",
    )
    alert_webhook_url: str | None = Field(
        None,
        description="Where alerts are POSTed as JSON (failing health checks, failed runs, "
        "champion changes). Unset: no alerts.",
    )
    alert_webhook_secret: str | None = Field(
        None,
        description="HMAC-SHA256 key of the X-ML-Platform-Signature header of alerts.",
    )
    alert_timeout_s: float = Field(5.0, gt=0, description="HTTP timeout per alert POST.")
    dagster_ui_url: str = Field(
        "http://127.0.0.1:3000", description="Base URL of the Dagster UI, for links in alerts."
    )
    alert_repeat_after_hours: float = Field(
        24.0,
        ge=0.0,
        description="A check that keeps failing at the same severity alerts again only after "
        "this many hours (a rise to ERROR alerts at once; passing again sends 'resolved').",
    )

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME when set (a shared, e.g. PostgreSQL-backed, instance), else under home."""
        from_env = os.environ.get("DAGSTER_HOME")
        return Path(from_env).expanduser().resolve() if from_env else self.resolved_home / "dagster"

    @property
    def mlflow_dir(self) -> Path:
        return self.resolved_home / "mlflow"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def mlflow_artifact_root(self) -> str:
        """The artifact-root setting as a URI; local directories become file: URIs."""
        if self.mlflow_artifacts and "://" in self.mlflow_artifacts:
            return self.mlflow_artifacts
        if self.mlflow_artifacts:
            return Path(self.mlflow_artifacts).expanduser().resolve().as_uri()
        return self.mlflow_artifacts_dir.as_uri()

    @property
    def store_root(self) -> str:
        """The store's root URL (a local directory path or s3://bucket/prefix)."""
        if self.store_url and "://" in self.store_url:
            return self.store_url.rstrip("/")
        if self.store_url:
            return str(Path(self.store_url).expanduser().resolve())
        return str(self.resolved_home)

    @property
    def tracking_uri(self) -> str:
        """Explicit setting, then the standard MLFLOW_TRACKING_URI, then sqlite under home."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        from_env = os.environ.get("MLFLOW_TRACKING_URI")
        if from_env:
            return from_env
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def metadata_db_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.data_dir / 'metadata.sqlite'}"

    @property
    def sample_snapshot_dir(self) -> Path:
        return self.resolved_home / "sample_crawlr"

    @property
    def crawlr_source(self) -> str:
        return self.crawlr or str(self.sample_snapshot_dir)

    @property
    def image_store_dir(self) -> Path:
        return self.resolved_home / "images"

    @property
    def data_dir(self) -> Path:
        """Parquet and JSON outputs of the assets (catalogs, detections, embeddings, ...)."""
        return self.resolved_home / "data"


SETTING = "setting"  # an options field's metadata: the Settings attribute that feeds it


def fed_by(name: str, default: Any = dataclasses.MISSING) -> Any:
    """A field of an options dataclass (ServeOptions, EmbedderOptions, DecodeOptions) that
    setting ``name`` feeds in `options_from`. Its default is the one `Settings` declares, never
    retyped; ``default`` only where the option deliberately differs or ``name`` is derived
    (a property of Settings). A test checks that each such difference is listed."""
    if default is dataclasses.MISSING:
        default = Settings.model_fields[name].default
    return dataclasses.field(default=default, metadata={SETTING: name})


def options_from(options: type[OptionsT], settings: Settings) -> OptionsT:
    """``options`` with every field a setting feeds (`fed_by`) read from ``settings``; the
    other fields keep their defaults."""
    fed = {field.name: getattr(settings, field.metadata[SETTING])
           for field in dataclasses.fields(options) if SETTING in field.metadata}  # fmt: skip
    return options(**fed)


def _check_http_url(value: str) -> str:
    from ml_platform.redact import redact_url

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise ValueError(f"{redact_url(value)!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(value)!r} must be an http:// or https:// URL with a host")
    return value
