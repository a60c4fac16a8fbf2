"""The bearer-token guard, the open health routes, Prometheus metrics per app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ml_platform.serving.options import ServeOptions, allowed_hosts, host_allowed
from ml_platform.settings import Settings
from tests.serving.conftest import AppFactory, analyze_json, image_bytes

CLASSIFY = {"type": "classify", "collection_id": 1}
TOKEN = "s3cret-token"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "wrong-scheme"],
)
def test_v1_routes_require_the_token_when_set(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    client = make_app(serve_token=TOKEN).client
    analyze = client.post(
        "/v1/analyze", json=analyze_json(image_bytes(), CLASSIFY), headers=headers
    )
    zero_shot = client.post("/v1/zero-shot", json={}, headers=headers)
    classifier = client.get("/v1/collections/1/classifier", headers=headers)

    for response in (analyze, zero_shot, classifier):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"


def test_v1_routes_accept_the_token(make_app: AppFactory) -> None:
    client = make_app(serve_token=TOKEN).client
    auth = {"Authorization": f"Bearer {TOKEN}"}

    response = client.post("/v1/analyze", json=analyze_json(image_bytes(), CLASSIFY), headers=auth)
    assert response.status_code == 200, response.text
    assert client.get("/v1/collections/1/classifier", headers=auth).status_code == 200


def test_health_readiness_and_metrics_stay_open(make_app: AppFactory) -> None:
    client = make_app(serve_token=TOKEN).client

    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert client.get("/metrics").status_code == 200


def test_metrics_count_operations_errors_and_model_loads_per_app(make_app: AppFactory) -> None:
    first, second = make_app(), make_app()  # two apps, two registries: no duplicate metrics
    body = analyze_json(image_bytes(), CLASSIFY, {"type": "classify", "collection_id": 999})
    first.client.post("/v1/analyze", json=body)
    first.client.post("/v1/analyze", json=body)

    text = first.client.get("/metrics").text
    assert 'ml_platform_serving_operation_seconds_count{operation="classify"} 4.0' in text
    assert 'ml_platform_serving_errors_total{kind="collection_not_found"} 2.0' in text
    assert 'ml_platform_serving_model_loads_total{cache="classifier"} 1.0' in text
    assert 'ml_platform_serving_model_loads_total{cache="embedder"} 1.0' in text
    assert 'ml_platform_serving_model_cache_hits_total{cache="classifier"} 1.0' in text
    assert 'ml_platform_serving_stage_seconds_count{stage="embedding"} 2.0' in text
    assert 'route="/v1/analyze",status="200"' in text
    assert 'operation="classify"' not in second.client.get("/metrics").text


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://crawlr.local:8080/media/1.jpg", True),
        ("https://CRAWLR.local:8080/x.jpg", True),
        ("http://crawlr.local/media/1.jpg", False),  # another port
        ("http://crawlr.local.evil.com:8080/x.jpg", False),
        ("http://user:pw@crawlr.local:8080/x.jpg", False),
        ("file:///etc/passwd", False),
        ("ftp://crawlr.local:8080/x.jpg", False),
        ("http://169.254.169.254/latest/meta-data", False),
    ],
)
def test_image_hosts_default_to_crawlr(url: str, allowed: bool) -> None:
    settings = Settings(crawlr="http://crawlr.local:8080/api")
    hosts = allowed_hosts(settings, ServeOptions())
    assert host_allowed(url, hosts) is allowed


def test_image_hosts_are_configurable_and_empty_for_a_snapshot_crawlr(tmp_path: Path) -> None:
    snapshot = Settings(crawlr=str(tmp_path))
    assert allowed_hosts(snapshot, ServeOptions()) == frozenset()
    listed = allowed_hosts(snapshot, ServeOptions(allowed_image_hosts=("cdn.example.com",)))
    assert host_allowed("https://cdn.example.com:443/a.jpg", listed)
    assert not host_allowed("https://img.example.com/a.jpg", listed)


def test_openapi_documents_both_request_bodies_without_dangling_refs(make_app: AppFactory) -> None:
    schema = make_app().client.get("/openapi.json").json()
    text = json.dumps(schema)
    refs = {ref.rsplit("/", 1)[-1] for ref in re.findall(r'"\$ref": "([^"]+)"', text)}

    assert refs <= set(schema["components"]["schemas"])
    content = schema["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}


def test_serve_options_come_from_settings() -> None:
    from ml_platform.serving.options import options_from_settings
    from ml_platform.settings import Settings

    options = options_from_settings(
        Settings(serve_refresh_interval_s=5, serve_allowed_image_hosts="a.example,b.example:8080")
    )
    assert options.refresh_interval_s == 5
    assert options.allowed_image_hosts == ("a.example", "b.example:8080")
    assert options_from_settings(Settings(serve_allowed_image_hosts="")).allowed_image_hosts == ()
