"""`ml-platform pipeline-metrics`: the pipeline's figures for Prometheus, from a home's
Dagster instance (each finished run's steps, read from its event log)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("pipeline-metrics")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="The home to watch.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9464, show_default=True, type=int)
def pipeline_metrics(home: Path | None, host: str, port: int) -> None:
    """Serve GET /metrics: step durations, images per batch, download failures, runs,
    retrains and promotions of every finished run (Prometheus scrapes it)."""
    from ml_platform.defs.pipeline_metrics import PipelineExporter, metrics_server
    from ml_platform.defs.runner import instance_for
    from ml_platform.settings import Settings

    settings = Settings(**({"home": home} if home else {}))  # type: ignore[arg-type]
    exporter = PipelineExporter(instance_for(settings))
    click.echo(f"{exporter.refresh()} finished runs read; /metrics on http://{host}:{port}")
    server = metrics_server(exporter, host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
