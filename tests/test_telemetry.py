"""Tracing off costs nothing; on, spans reach a real OTLP/HTTP receiver; logs carry ids."""

from __future__ import annotations

import logging

import pytest

from ml_platform import telemetry
from tests.otlp_receiver import Receiver


def test_without_an_otlp_endpoint_spans_are_one_shared_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    telemetry.reset()
    assert telemetry.tracer() is None
    assert telemetry.span("a") is telemetry.span("b", {"x": 1})
    with telemetry.span("a") as span:
        assert span is None and telemetry.current() is None


@pytest.mark.parametrize(
    ("variable", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")]
)
def test_the_standard_switches_turn_tracing_off(variable: str, value: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
    assert not telemetry.enabled(environ)
    assert telemetry.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})


def test_nested_spans_reach_the_receiver_with_service_name_and_parents(otlp: Receiver) -> None:
    with telemetry.span("outer", {"n": 3}), telemetry.span("inner"):
        pass
    spans = {s.name: s for s in otlp.collect()}
    assert otlp.paths == ["/v1/traces"]
    assert spans["inner"].parent_id == spans["outer"].span_id
    assert spans["inner"].trace_id == spans["outer"].trace_id
    assert spans["outer"].attributes == {"n": 3} and spans["outer"].service == "ml-platform-test"


def test_log_records_carry_the_trace_and_span_ids(
    otlp: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry.install_log_ids(caplog.handler)
    with caplog.at_level(logging.INFO), telemetry.span("logged"):
        logging.getLogger("ml_platform.test").info("inside")
    logging.getLogger("ml_platform.test").warning("outside")
    (span,) = [s for s in otlp.collect() if s.name == "logged"]
    inside, outside = caplog.records[-2:]
    assert (inside.otel_trace_id, inside.otel_span_id) == (span.trace_id, span.span_id)  # type: ignore[attr-defined]
    assert outside.otel_trace_id == "-"  # type: ignore[attr-defined]
