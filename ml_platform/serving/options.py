"""Serving knobs. Those that are platform settings (ML_PLATFORM_SERVE_*, ..._SIGLIP_MODEL)
say so (`fed_by`) and take their defaults from `Settings`, the one place a default lives; the
others are knobs of the server object only. `options_from_settings` is how every caller
builds them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ml_platform.settings import Settings, fed_by, options_from


@dataclass(frozen=True)
class ServeOptions:
    """How the server refreshes champions, which hosts it fetches images from, zero-shot models.

    Inference (decode, detection, embedding, classification) runs on `inference_workers`
    dedicated threads: torch's CPU thread pool is per calling thread, so a few long-lived
    threads beat many short-lived ones; models already use every core per call.
    `allowed_image_hosts=None` means "crawlr's host when settings.crawlr is an http(s) URL,
    else none"; an empty tuple forbids `image_url` altogether. Hosts match case-insensitively,
    as `host` (any port) or `host:port` (that port only).
    """

    refresh_interval_s: float = fed_by("serve_refresh_interval_s")
    inference_workers: int = 1
    allowed_image_hosts: tuple[str, ...] | None = fed_by("image_hosts", None)
    image_fetch_timeout_s: float = 10.0
    clip_zero_shot_model: str | None = None  # None: settings.clip_model
    siglip_model: str = fed_by("siglip_model")
    max_operations: int = 32
    max_zero_shot_images: int = 16
    max_zero_shot_classes: int = 256
    model_memory_mb: int = fed_by("serve_model_memory_mb")  # budget (serving.model_budget)
    model_ttl_s: float = fed_by("serve_model_ttl_s")  # idle models are unloaded (0: never)

    def __post_init__(self) -> None:
        if self.refresh_interval_s < 0:
            raise ValueError(f"refresh_interval_s must be >= 0, got {self.refresh_interval_s}")
        if self.inference_workers < 1:
            raise ValueError(f"inference_workers must be >= 1, got {self.inference_workers}")
        if self.image_fetch_timeout_s <= 0:
            raise ValueError(
                f"image_fetch_timeout_s must be positive, got {self.image_fetch_timeout_s}"
            )
        if self.model_memory_mb <= 0 or self.model_ttl_s < 0:
            raise ValueError(
                f"model_memory_mb must be positive and model_ttl_s >= 0, got "
                f"{self.model_memory_mb} and {self.model_ttl_s}"
            )


def allowed_hosts(settings: Settings, options: ServeOptions) -> frozenset[str]:
    """The lower-cased hosts (`host` or `host:port`) that `image_url` may point at."""
    if options.allowed_image_hosts is not None:
        return frozenset(host.strip().lower() for host in options.allowed_image_hosts if host)
    crawlr = settings.crawlr or ""
    parts = urlsplit(crawlr)
    if parts.scheme in ("http", "https") and parts.hostname:
        return frozenset({parts.netloc.lower().rpartition("@")[2]})
    return frozenset()


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched at all (not http(s), unparsable, control characters,
    credentials), or None."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "contains spaces or control characters (CR, LF, tab, NUL); percent-encode them"
    try:
        parts = urlsplit(url)
        hostname, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https") or not hostname:
        return "must be an absolute http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    return None


def host_allowed(url: str, hosts: frozenset[str]) -> bool:
    """Whether `url` is a fetchable http(s) URL whose host (with or without port) is in
    `hosts`."""
    if url_problem(url) is not None:
        return False
    parts = urlsplit(url)
    hostname = (parts.hostname or "").lower()
    return hostname in hosts or parts.netloc.lower() in hosts


def options_from_settings(settings: Settings) -> ServeOptions:
    """The ServeOptions the ML_PLATFORM_SERVE_* settings describe."""
    return options_from(ServeOptions, settings)
