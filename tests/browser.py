"""A real headless Chromium (Debian's `chromium` package) driven by playwright.

Without /usr/bin/chromium (or playwright) the browser tests skip with the reason; under CI=true
they fail instead, as the server fixtures do: CI installs chromium in .ci/run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("ML_PLATFORM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with no network beyond what a page asks of 127.0.0.1."""
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# ReDoc 2 shows a "docs by Redocly" link with this logo and has no option to leave it out; it is
# decoration (offline it is a missing image), so it is the one outside request allowed.
DECORATION = frozenset({"https://cdn.redoc.ly/redoc/logo-mini.svg"})


def outside_requests(page: Any, base_url: str) -> list[str]:
    """Start recording every request `page` makes outside `base_url` (a CDN, web fonts)."""
    seen: list[str] = []

    def record(request: Any) -> None:
        url = str(request.url)
        local = url.startswith((base_url, "blob:", "data:")) or url in DECORATION
        if not local:
            seen.append(url)

    page.on("request", record)
    return seen
