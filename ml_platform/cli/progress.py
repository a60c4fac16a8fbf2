"""The CLI's stderr: one rich console for the live progress line and every log record, so log
lines print above the progress line instead of onto it; each warning once; and the time since
the process started (start-up included)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ml_platform import telemetry

OnJob = Callable[[str, str | None], None]
STDERR = Console(stderr=True)
CLOUDPICKLE = "serialized using CloudPickle"
CLOUDPICKLE_ONCE = (
    "MLflow stores each classifier as a cloudpickled Python model (mlflow.pyfunc), and loading "
    "a pickle runs code: load models only from a registry you trust (said once per command)"
)


class OncePerMessage(logging.Filter):
    """Drop a record whose text was already shown; MLflow's CloudPickle warning (one per
    registered model) becomes one sentence saying what it means."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if CLOUDPICKLE in text:
            record.msg, record.args, text = CLOUDPICKLE_ONCE, None, CLOUDPICKLE_ONCE
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


def configure_logging(verbose: bool) -> None:
    """Root logging through the shared console (rich, when stderr is a terminal; else plain
    lines), each message once."""
    handler: logging.Handler
    if STDERR.is_terminal:
        handler = RichHandler(console=STDERR, show_path=False, rich_tracebacks=verbose)
        layout = "%(name)s: %(message)s"
    else:
        handler, layout = logging.StreamHandler(), "%(levelname)s %(name)s: %(message)s"
    handler.addFilter(OncePerMessage())
    if telemetry.enabled():  # each line names its trace and span (`-` outside any span)
        telemetry.install_log_ids(handler)
        layout += " [trace=%(otel_trace_id)s span=%(otel_span_id)s]"
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=layout,
        handlers=[handler],
        force=True,
    )
    logging.captureWarnings(True)  # Python warnings too go through the handler, each once
    # MLflow otherwise gives its loggers a stderr handler of their own at import (not rich's)
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


def seconds_since_start() -> float:
    """Wall time since this process started (Linux: /proc), else since this module loaded."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime") as up:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            uptime = float(up.read().split()[0])
        return max(uptime - started_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _LOADED


_LOADED = time.perf_counter()


@contextmanager
def job_progress(title: str, console: Console | None = None) -> Iterator[OnJob]:
    """An `on_job(job, partition)` callback that moves the progress line along."""
    console = console or STDERR
    if not console.is_terminal:
        yield lambda job, partition: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} jobs done"),
        TimeElapsedColumn(),
    )
    from ml_platform.services.ingest_progress import listening

    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=None)
        started, running = [False], [title]

        def on_job(job: str, partition: str | None) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            where = f" [{partition}]" if partition else ""
            running[0] = f"{title}: {job}{where}"
            progress.update(task, description=running[0])

        def on_images(done: int, total: int) -> None:
            progress.update(task, description=f"{running[0]}: image {done}/{total}")

        with listening(on_images):
            yield on_job
