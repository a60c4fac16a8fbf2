"""`/metrics` of the pipeline for Prometheus, from the Dagster instance's event log.

Prometheus scrapes this small server (`ml-platform pipeline-metrics`, beside the daemon); each
scrape first reads the runs that finished since the last one (`run_telemetry.run_steps`), so
the figures hold whatever executor ran the steps, without a Pushgateway or instrumented step
processes. On start it reads the instance's history once: counters then hold every finished
run (a restart is a counter reset, which Prometheus' `rate` handles).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest

from ml_platform.defs.run_telemetry import PipelineMetrics, run_steps

log = logging.getLogger(__name__)
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


class PipelineExporter:
    """Finished runs of one instance, each observed once."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.metrics = PipelineMetrics()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Observe the finished runs not seen yet; how many."""
        with self._lock:
            runs = self.instance.get_runs(filters=dg.RunsFilter(statuses=FINISHED))
            new = [run for run in runs if run.run_id not in self._seen]
            for run in reversed(new):  # oldest first
                steps = run_steps(self.instance, run.run_id)
                self.metrics.observe(run.job_name, run.status.value.lower(), steps)
                self._seen.add(run.run_id)
            return len(new)

    def exposition(self) -> bytes:
        self.refresh()
        return generate_latest(self.metrics.registry)


def metrics_server(exporter: PipelineExporter, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering GET /metrics (call `serve_forever`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = exporter.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)
