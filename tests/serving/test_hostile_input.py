"""Hostile input against the real app: every bad image, URL or body is a 4xx with a reason,
never a 5xx; an unexpected exception is a JSON 500 on a connection that stays usable."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ml_platform.serving import ServeOptions
from tests.serving.bad_images import Case, corpus
from tests.serving.conftest import AppFactory, Harness, analyze_json, b64, image_bytes
from tests.serving.live import live_server
from tests.serving.test_zero_shot import model_dirs  # noqa: F401 (fixture)

CLASSIFY = {"type": "classify", "collection_id": 1}
CORPUS = corpus()
# what a bad image may be answered with: never a 5xx
REFUSALS = {400, 413}


def documented(app: Harness, path: str) -> set[int]:
    schema = app.client.get("/openapi.json").json()
    return {int(status) for status in schema["paths"][path]["post"]["responses"]}


def check(case: Case, status: int, body: dict[str, Any]) -> None:
    assert status < 500, (case.name, status, body)
    if case.decodes is True:
        assert status == 200, (case.name, body)
    elif case.decodes is False:
        assert status in REFUSALS, (case.name, status, body)
        assert isinstance(body["detail"], str) and len(body["detail"]) > 20, body


def test_corpus_has_at_least_forty_files_of_every_kind() -> None:
    names = " ".join(case.name for case in CORPUS)
    assert len(CORPUS) >= 40
    for kind in ("jpeg", "png", "gif", "webp", "tiff", "bomb", "aspect", "exif", "cmyk",
                 "16-bit", "palette", "animated", "20000x1", "65500x1"):  # fmt: skip
        assert kind in names, kind


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_bad_image_as_base64_and_upload_is_never_a_server_error(
    make_app: AppFactory, case: Case
) -> None:
    app = make_app()
    as_json = app.client.post("/v1/analyze", json=analyze_json(case.data, CLASSIFY))
    as_upload = app.client.post(
        "/v1/analyze",
        files={"image": ("x", case.data, "application/octet-stream")},
        data={"operations": '[{"type": "classify", "collection_id": 1}]'},
    )
    for response in (as_json, as_upload):
        check(case, response.status_code, response.json())
        assert response.status_code in documented(app, "/v1/analyze") | {200}
    assert as_json.status_code == as_upload.status_code


@pytest.fixture
def zero_shot_app(make_app: AppFactory, model_dirs: dict[str, str]) -> Harness:  # noqa: F811
    options = ServeOptions(clip_zero_shot_model=model_dirs["clip"], max_zero_shot_images=64)
    return make_app(options=options)


def test_whole_corpus_in_one_zero_shot_batch_fails_only_the_bad_images(
    zero_shot_app: Harness,
) -> None:
    images = [{"id": case.name, "image_base64": b64(case.data)} for case in CORPUS]
    body = {"model": "clip", "images": images, "classes": ["cat", "dog"]}
    response = zero_shot_app.client.post("/v1/zero-shot", json=body)

    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    for case in CORPUS:
        result = results[case.name]
        error = result["error"]
        check(
            case,
            200 if error is None else error["status"],
            {"detail": (error or {}).get("message")},
        )
        assert (error is None) == bool(result["predictions"]), case.name


def test_zero_shot_duplicate_ids_are_refused_and_upload_names_made_unique(
    zero_shot_app: Harness,
) -> None:
    same = [{"id": "a", "image_base64": b64(image_bytes(seed=i))} for i in range(2)]
    duplicate = zero_shot_app.client.post(
        "/v1/zero-shot", json={"model": "clip", "images": same, "classes": ["cat"]}
    )
    uploads = zero_shot_app.client.post(
        "/v1/zero-shot",
        data={"request": '{"model": "clip", "classes": ["cat"]}'},
        files=[("images", ("p.jpg", image_bytes(seed=i), "image/jpeg")) for i in range(3)],
    )

    assert duplicate.status_code == 422
    assert "image ids must be unique; repeated: ['a']" in duplicate.text
    assert [r["id"] for r in uploads.json()["results"]] == ["p.jpg", "p.jpg#2", "p.jpg#3"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1/x", "not a valid URL"),
        ("http://crawlr.local/a\r\nHost: evil", "control characters"),
        ("http://crawlr.local/a\tb.jpg", "control characters"),
        ("http://crawlr.local/a\x00b.jpg", "control characters"),
        ("http://crawlr.local:99999/a.jpg", "not a valid URL"),
        ("http://user:pw@crawlr.local/a.jpg", "credentials"),
        ("file:///etc/passwd", "http:// or https://"),
    ],
)
def test_malformed_image_url_is_a_422_naming_the_problem(
    make_app: AppFactory, url: str, problem: str
) -> None:
    app = make_app(serve_allowed_image_hosts="crawlr.local")
    response = app.client.post("/v1/analyze", json={"image_url": url, "operations": [CLASSIFY]})

    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]
    assert "pw@" not in response.text


@pytest.mark.parametrize(
    ("value", "message"),
    [("data:image/png;base64", "not a `data:<type>;base64,<data>` URL"),
     ("data:image/png,AAAA", "not a `data:<type>;base64,<data>` URL"),
     ("data:image/png;base64,%%%", "not valid base64")],
)  # fmt: skip
def test_malformed_data_url_is_a_400(make_app: AppFactory, value: str, message: str) -> None:
    body = {"image_base64": value, "operations": [CLASSIFY]}
    response = make_app().client.post("/v1/analyze", json=body)
    assert response.status_code == 400 and message in response.json()["detail"]


class Trickle(BaseHTTPRequestHandler):
    """Sends one byte every 0.2 s: each read is quick, the whole download never ends."""

    def log_message(self, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return


@pytest.fixture
def trickle() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_trickling_image_host_hits_the_whole_fetch_deadline(
    make_app: AppFactory, trickle: str
) -> None:
    options = ServeOptions(allowed_image_hosts=(trickle,), image_fetch_timeout_s=0.6)
    app = make_app(options=options)
    body = {"image_url": f"http://{trickle}/a.jpg", "operations": [CLASSIFY]}
    response = app.client.post("/v1/analyze", json=body)

    assert response.status_code == 504, response.text
    assert "not fetched within 0.6 s (the whole download)" in response.json()["detail"]


def test_image_embed_operation_shape_with_params_is_accepted(make_app: AppFactory) -> None:
    operation = {"type": "classify", "params": {"collection_id": 1}}
    response = make_app().client.post("/v1/analyze", json=analyze_json(image_bytes(), operation))

    assert response.status_code == 200, response.text
    result = response.json()["results"][0]["result"]
    assert isinstance(result["is_in_collection"], bool) and 0 <= result["probability"] <= 1
    assert "total_ms" in response.json()["timings_ms"]


@pytest.mark.parametrize(
    "operation",
    [{"type": "classify", "params": 42},
     {"type": "classify", "collection_id": 1, "params": {"collection_id": 2}}],
)  # fmt: skip
def test_malformed_params_are_a_422(make_app: AppFactory, operation: dict[str, Any]) -> None:
    response = make_app().client.post("/v1/analyze", json=analyze_json(image_bytes(), operation))
    assert response.status_code == 422


def test_large_image_is_analysed_reduced_and_says_so(make_app: AppFactory) -> None:
    app = make_app(serve_max_decode_side=100)
    response = app.client.post(
        "/v1/analyze", json=analyze_json(image_bytes(size=(400, 300)), CLASSIFY)
    )
    image = response.json()["image"]
    assert response.status_code == 200
    assert (image["width"], image["height"]) == (100, 75)
    assert (image["original_width"], image["original_height"]) == (400, 300)


def _raw_requests(url: str, paths: list[str]) -> list[bytes]:
    """GET each path on ONE keep-alive connection; the raw responses."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for path in paths:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answers.append(_read_response(sock))
    return answers


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_unexpected_exception_is_a_json_500_and_the_connection_stays_usable(
    make_app: AppFactory,
) -> None:
    app = make_app(serve_preload=False).client.app

    async def broken() -> None:
        raise ZeroDivisionError("a bug")

    app.add_api_route("/boom", broken)  # type: ignore[attr-defined]
    with live_server(app) as url:  # type: ignore[arg-type]
        boom, health = _raw_requests(url, ["/boom", "/healthz"])

    assert boom.startswith(b"HTTP/1.1 500")
    assert b'"kind":"internal"' in boom and b"ZeroDivisionError" in boom
    assert health.startswith(b"HTTP/1.1 200") and b'"ok"' in health


def test_docs_work_offline_from_local_assets(make_app: AppFactory) -> None:
    client = make_app().client
    pages = {path: client.get(path) for path in ("/docs", "/redoc")}
    swagger = client.get("/docs/assets/swagger-ui-bundle.js")
    redoc = client.get("/docs/assets/redoc.standalone.js")

    assert pages["/docs"].status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in pages["/docs"].text
    assert pages["/redoc"].status_code == 200
    assert "/docs/assets/redoc.standalone.js" in pages["/redoc"].text
    assert all("cdn" not in page.text.lower() for page in pages.values())
    assert all("fonts.googleapis" not in page.text for page in pages.values())
    assert swagger.status_code == 200 and len(swagger.content) > 100_000
    assert redoc.status_code == 200 and len(redoc.content) > 100_000


def test_openapi_documents_every_error_status(make_app: AppFactory) -> None:
    app = make_app()
    assert documented(app, "/v1/analyze") >= {200, 400, 401, 403, 404, 409, 413, 415, 422, 500,
                                               502, 503, 504}  # fmt: skip
    assert documented(app, "/v1/zero-shot") >= {200, 400, 413, 415, 422, 500, 503, 504}
