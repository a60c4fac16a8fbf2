"""Bulk champion-alias reads in a worker process (`alias_worker`), one per registry URI.

`worker_for(uri)` is started on the first bulk re-check that needs it (not at start-up), is
shared by the champion caches over that registry, is started again when it died, and is ended
by the app's lifespan at shutdown (`close_workers`). A
registry failure in the worker raises `MlflowException` here, exactly as the read in this
process would (the caches keep serving what they know); a worker that cannot be started, dies
or does not answer within `REPLY_TIMEOUT_S` raises `WorkerUnavailable` (and is ended), and
the caller reads in this process instead.
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("alias_worker.py")
RETRY_AFTER_S = 60.0  # after a worker failure, reads stay in this process this long
REPLY_TIMEOUT_S = 120.0  # a worker silent this long is ended (a hung read, a stale script)


class WorkerUnavailable(RuntimeError):
    """The worker could not be started, or died during a read."""


class AliasWorker:
    """One worker process reading `uri`'s champion aliases, one read at a time."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._failed_at: float | None = None

    def champion_versions(self, names: Sequence[str]) -> dict[str, str]:
        """`alias_worker.search_champion_aliases(names)`, run in the worker."""
        with self._lock:
            reply = self._ask(json.dumps(list(names)))
        if "error" in reply:
            raise MlflowException(f"registry read in the alias worker failed: {reply['error']}")
        versions: dict[str, str] = reply["versions"]
        return versions

    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, request: str) -> dict[str, Any]:
        stdin, stdout = self._pipes()
        try:
            stdin.write(request + "\n")
            stdin.flush()
            # one line answers one line, so nothing is buffered before it: wait on the pipe
            ready, _, _ = select.select([stdout], [], [], REPLY_TIMEOUT_S)
            line = stdout.readline() if ready else ""
        except (OSError, ValueError) as exc:  # broken pipe, closed file
            line = ""
            log.warning("the alias worker failed: %s", exc)
        reply = _reply(line)
        if reply is None:
            self._stop()
            self._failed_at = time.monotonic()
            raise WorkerUnavailable("the alias worker exited, did not answer or answered garbage")
        return reply

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        if self._process is None or self._process.poll() is not None:
            self._start()
        assert self._process is not None and self._process.stdin and self._process.stdout
        return self._process.stdin, self._process.stdout

    def _start(self) -> None:
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
            raise WorkerUnavailable("the alias worker failed recently")
        command = [sys.executable, "-P", str(WORKER)]
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert self._process.stdin is not None
            self._process.stdin.write(self.uri + "\n")  # not in argv, where `ps` shows it
        except OSError as exc:
            self._failed_at = time.monotonic()
            raise WorkerUnavailable(f"could not start the alias worker: {exc}") from exc
        log.info("alias worker started (pid %d)", self._process.pid)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the worker's loop ends
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _reply(line: str) -> dict[str, Any] | None:
    """The worker's answer line as an object; None for no line or one that is not an answer."""
    try:
        reply = json.loads(line) if line else None
    except ValueError:
        return None
    return reply if isinstance(reply, dict) and ("versions" in reply or "error" in reply) else None


_workers: dict[str, AliasWorker] = {}
_guard = threading.Lock()


def worker_for(uri: str) -> AliasWorker:
    """The shared worker of registry `uri` (started on its first read)."""
    with _guard:
        return _workers.setdefault(uri, AliasWorker(uri))


def close_workers() -> None:
    """End every worker (the app's lifespan, at shutdown); a later read starts one again."""
    with _guard:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker.close()


def in_worker(uri: str) -> bool:
    """Whether `uri`'s reads can run in another process (not an in-memory database)."""
    return ":memory:" not in uri
