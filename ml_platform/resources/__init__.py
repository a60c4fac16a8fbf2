"""Dagster resources: one ConfigurableResource per external system."""

from ml_platform.resources.base import PlatformResource
from ml_platform.resources.crawlr import CrawlrResource
from ml_platform.resources.storage import StorageResource

__all__ = ["CrawlrResource", "PlatformResource", "StorageResource"]
