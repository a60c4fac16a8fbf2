"""One classify request is one trace: the HTTP span, its stages, the batcher's queue and the
forward pass (with the batch size), nested, as a real OTLP/HTTP receiver decodes them."""

from __future__ import annotations

from ml_platform.serving import ServeOptions
from tests.otlp_receiver import ReceivedSpan, Receiver
from tests.serving.conftest import AppFactory, analyze_json, image_bytes


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    names = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def test_a_classify_request_is_one_trace_whose_spans_nest(
    make_app: AppFactory, otlp: Receiver
) -> None:
    app = make_app(options=ServeOptions(refresh_interval_s=60.0))
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 2})  # face, DINO
    assert app.client.post("/v1/analyze", json=body).status_code == 200
    otlp.collect()  # the first request's spans (with its loads) out of the way
    otlp.spans.clear()
    assert app.client.post("/v1/analyze", json=body).status_code == 200  # warm: no loads

    spans = otlp.collect()
    assert len({s.trace_id for s in spans}) == 1, [s.name for s in spans]
    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if s.parent_id not in by_id]
    assert root.name == "POST /v1/analyze" and root.attributes["http.response.status_code"] == 200
    by_name = {s.name: s for s in spans}
    assert {"decode", "classification", "classify", "detection", "embedding", "preprocess",
            "batch-queue", "forward"} <= set(by_name)  # fmt: skip
    assert ancestors(by_name["forward"], by_id)[-2:] == ["classify", "POST /v1/analyze"]
    assert "embedding" in ancestors(by_name["batch-queue"], by_id)
    assert by_name["forward"].attributes["batch_size"] == 1
    assert by_name["batch-queue"].attributes["batch_size"] == 1
    for span in spans:  # a child lies within its parent
        if span is not root:
            parent = by_id[span.parent_id]
            assert parent.start_ns <= span.start_ns and span.end_ns <= parent.end_ns, span.name


def test_a_first_request_traces_the_model_loads(make_app: AppFactory, otlp: Receiver) -> None:
    app = make_app()
    body = analyze_json(image_bytes(), {"type": "classify", "collection_id": 1})
    assert app.client.post("/v1/analyze", json=body).status_code == 200
    loads = {s.name: s for s in otlp.collect() if s.name in ("mlflow.load", "model.load")}
    assert loads["mlflow.load"].attributes["model.name"] == "crawlr-collection-1"
    assert loads["model.load"].attributes["model.cache"] == "embedder"
