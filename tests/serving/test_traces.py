"""One classify request is one trace: the HTTP span, its stages, the operations, the embedding
(with its preprocessing, queue wait and batch size) and the forward pass, nested, as a real
OTLP/HTTP receiver decodes them; classifies answered from the request's embedding add none."""

from __future__ import annotations

from ml_platform.serving import ServeOptions
from tests.otlp_receiver import ReceivedSpan, Receiver
from tests.serving.conftest import DINO, AppFactory, Harness, analyze_json, image_bytes


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    names = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def traced_request(
    app: Harness, otlp: Receiver, *operations: dict[str, object]
) -> list[ReceivedSpan]:
    """The spans of one warm request (a first one, with its loads, is sent and dropped)."""
    body = analyze_json(image_bytes(), *operations)
    assert app.client.post("/v1/analyze", json=body).status_code == 200
    otlp.collect()
    otlp.spans.clear()
    assert app.client.post("/v1/analyze", json=body).status_code == 200
    return otlp.collect()


def test_a_classify_request_is_one_trace_whose_spans_nest(
    make_app: AppFactory, otlp: Receiver
) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=60.0))
    spans = traced_request(app, otlp, {"type": "classify", "collection_id": 2})  # face, DINO

    assert len({s.trace_id for s in spans}) == 1, [s.name for s in spans]
    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if s.parent_id not in by_id]
    assert root.name == "POST /v1/analyze" and root.attributes["http.response.status_code"] == 200
    by_name = {s.name: s for s in spans}
    assert {"decode", "classification", "operations", "detection", "embedding",
            "forward"} <= set(by_name)  # fmt: skip
    assert ancestors(by_name["forward"], by_id) == ["embedding", "operations", "POST /v1/analyze"]
    assert by_name["forward"].attributes["batch_size"] == 1
    embedding = by_name["embedding"].attributes  # the queue and preprocessing: attributes
    assert embedding["batch_size"] == 1 and embedding["embedder"] == DINO
    waits = [embedding["preprocess_ms"], embedding["batch_wait_ms"]]
    assert all(isinstance(ms, float) and ms >= 0 for ms in waits), waits
    assert by_name["operations"].attributes["operations.classify"] == 1
    for span in spans:  # a child lies within its parent
        if span is not root:
            parent = by_id[span.parent_id]
            assert parent.start_ns <= span.start_ns and span.end_ns <= parent.end_ns, span.name


def test_classifies_answered_from_the_requests_embedding_add_no_spans(
    make_app: AppFactory, otlp: Receiver
) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=60.0))
    one = traced_request(app, otlp, {"type": "classify", "collection_id": 1})
    five = traced_request(app, otlp, *[{"type": "classify", "collection_id": 1}] * 5)
    assert sorted(s.name for s in five) == sorted(s.name for s in one)
    (operations,) = [s for s in five if s.name == "operations"]
    assert operations.attributes["operations.classify"] == 5


def test_a_first_request_traces_the_model_loads(make_app: AppFactory, otlp: Receiver) -> None:
    app = make_app()
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 1})
    assert app.client.post("/v1/analyze", json=body).status_code == 200
    loads = {s.name: s for s in otlp.collect() if s.name in ("mlflow.load", "model.load")}
    assert loads["mlflow.load"].attributes["model.name"] == "crawlr-collection-1"
    assert loads["model.load"].attributes["model.cache"] == "embedder"
