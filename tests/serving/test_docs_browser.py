"""/docs (Swagger UI 5) and /redoc (ReDoc 2) render the app's OpenAPI 3.1 schema in a real
headless Chromium, from the app's own files only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import browser, outside_requests  # noqa: F401 (fixture)
from tests.serving.conftest import AppFactory
from tests.serving.live import live_server

OPERATIONS = ("/v1/analyze", "/v1/zero-shot")


@pytest.mark.parametrize(
    ("path", "operation_selector"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id^='operation/']")],
)
def test_docs_page_lists_the_operations_offline(
    make_app: AppFactory,
    browser: Any,  # noqa: F811
    path: str,
    operation_selector: str,
) -> None:
    app = make_app(serve_preload=False).client.app
    with live_server(app) as url:  # type: ignore[arg-type]
        page = browser.new_page()
        outside = outside_requests(page, url)
        page.goto(url + path)
        page.wait_for_selector(operation_selector, timeout=60_000)
        text = page.inner_text("body")
        page.close()

    assert "Unable to render this definition" not in text
    assert "ml_platform serving" in text
    for operation in OPERATIONS:
        assert operation in text, f"{path} does not list {operation}"
    assert outside == []
