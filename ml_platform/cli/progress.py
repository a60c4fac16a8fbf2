"""A live progress line for `demo` and `run`: the Dagster job running now, the jobs done and
the time elapsed (rich, on stderr; nothing when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

OnJob = Callable[[str, str | None], None]


@contextmanager
def job_progress(title: str, console: Console | None = None) -> Iterator[OnJob]:
    """An `on_job(job, partition)` callback that moves the progress line along."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda job, partition: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} jobs done"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=None)
        started = [False]

        def on_job(job: str, partition: str | None) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            where = f" [{partition}]" if partition else ""
            progress.update(task, description=f"{title}: {job}{where}")

        yield on_job
