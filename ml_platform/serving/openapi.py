"""The OpenAPI schema: every status a route can answer, and the offline docs at /docs and /redoc.

The schema is OpenAPI 3.1, which Swagger UI reads from version 5 on. Swagger UI 5 and ReDoc 2
come from the `fastapi-offline` package (MIT; Swagger UI's files Apache-2.0, ReDoc's MIT): only
its static folder is used, served by the app itself, so both pages work without internet access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ml_platform.serving.errors import ErrorKind

DOCS_ASSETS = "/docs/assets"
ERROR_REF = "#/components/schemas/ErrorBody"

REASONS: dict[int, str] = {
    400: "The image (or its base64) cannot be decoded",
    401: "Missing or wrong bearer token",
    403: "image_url host is not on the allow-list",
    404: "Unknown collection or pet, or no champion",
    409: "The champion cannot be used with this server's embedder",
    413: "Image or body over a byte, pixel, side or aspect limit",
    415: "Content type other than JSON or multipart",
    422: "The request does not match the schema, or nothing was detected",
    500: "A bug: the body says so, the server log has the traceback",
    502: "image_url could not be fetched",
    503: "A model or the registry is not available (yet)",
    504: "image_url was not fetched within the deadline",
}
COMMON = (401, 422, 500)
ANALYZE_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 500, 502, 503, 504)
ZERO_SHOT_STATUSES = (400, 401, 403, 413, 415, 422, 500, 502, 503, 504)
PREDICT_STATUSES = (400, 401, 403, 404, 413, 415, 422, 500, 502, 503, 504)
SEARCH_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 500, 502, 503, 504)
CLASSIFIER_STATUSES = (401, 404, 413, 422, 500, 503)
PET_STATUSES = (401, 404, 413, 422, 500)
OPEN_STATUSES = (413, 500)  # every route: the body limit and the last-resort JSON 500


class ErrorBody(BaseModel):
    """Every error: `detail` is a sentence (a list of field errors for schema violations)."""

    detail: str | list[dict[str, Any]]
    kind: ErrorKind | None = Field(None, description="set on errors the API itself raises")


def error_responses(
    statuses: tuple[int, ...], body_ref: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with ErrorBody, or ErrorBody or `body_ref` (for
    routes whose body reports per-item errors with the first item's status)."""
    refs = [{"$ref": ERROR_REF}] + ([{"$ref": body_ref}] if body_ref else [])
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {
        status: {
            "description": REASONS[status],
            "content": {"application/json": {"schema": schema}},
        }
        for status in statuses
    }


def json_or_form_body(
    json_schema: dict[str, Any], form: dict[str, Any], json_fields: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its own body: JSON (`json_schema`) or a
    multipart form (the object schema `form`), whose `json_fields` are sent as JSON text."""
    multipart: dict[str, Any] = {"schema": form}
    if json_fields:
        multipart["encoding"] = {name: {"contentType": "application/json"} for name in json_fields}
    content = {"application/json": {"schema": json_schema}, "multipart/form-data": multipart}
    return {"requestBody": {"required": True, "content": content}}


def docs_assets_dir() -> Path:
    """The folder with swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs and ReDoc at /redoc from local files (no CDN, no web fonts).
    Both pages are static: rendered once here, answered as they are."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(docs_assets_dir())), name="docs-assets")
    schema_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=schema_url,
        title=f"{app.title} - docs",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )
    redoc = get_redoc_html(
        openapi_url=schema_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    for path, page in (("/docs", swagger), ("/redoc", redoc)):
        route = _static_page(bytes(page.body))
        app.add_api_route(path, route, include_in_schema=False, response_class=HTMLResponse)


def _static_page(html: bytes) -> Callable[[], Awaitable[HTMLResponse]]:
    """A route answering `html` (a fresh response each time)."""

    async def page() -> HTMLResponse:
        return HTMLResponse(html)

    return page


def build_openapi(app: FastAPI, bodies: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies the routes parse themselves and ErrorBody."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        models: list[type[BaseModel]] = [*bodies, ErrorBody]
        for model in models:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        operations = components["AnalyzeRequest"]["properties"]["operations"]["items"]
        components["AnyOperation"] = operations
        app.openapi_schema = schema
    return app.openapi_schema
