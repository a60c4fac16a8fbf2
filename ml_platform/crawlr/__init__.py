"""crawlr clients: the HTTP API and a local snapshot directory share one interface."""

from ml_platform.crawlr.client import CrawlrClient, CrawlrError, open_crawlr
from ml_platform.crawlr.contract import parse_collections, parse_images_page

__all__ = ["CrawlrClient", "CrawlrError", "open_crawlr", "parse_collections", "parse_images_page"]
