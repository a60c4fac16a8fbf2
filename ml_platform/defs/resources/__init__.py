"""Dagster resources: one ConfigurableResource per external system."""

from ml_platform.defs.resources.base import PlatformResource
from ml_platform.defs.resources.crawlr import CrawlrResource
from ml_platform.defs.resources.storage import StorageResource

__all__ = ["CrawlrResource", "PlatformResource", "StorageResource"]
