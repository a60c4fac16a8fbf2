"""The champion aliases of many registered models, read by name searches: in this process
(`search_champion_aliases`), or in a long-lived worker process (`AliasWorker`) so that the
registry client's Python (MLflow's ORM with a SQL store: ~17 statements per registered model
read, ~1 ms a name) does not hold the serving process's GIL while requests wait for it.

The worker is this file run as a script (`python -P alias_worker.py`): it imports MLflow
and nothing of ml_platform (whose serving package imports the whole app), reads the registry
URI from its first stdin line, then one JSON list of names per line, and writes one JSON line
back for each: `{"versions": {name: version}}`, or `{"error": "..."}` when the registry
failed (the caller treats that as the registry being unreachable). It exits when its stdin
closes, so it never outlives the server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

NAMES_PER_SEARCH = 100  # names in one `name IN (...)` filter
CHAMPION = "champion"  # versions.Alias.CHAMPION (not imported: the worker imports MLflow only)


def search_champion_aliases(client: MlflowClient, names: Sequence[str]) -> dict[str, str]:
    """Registered model name -> the version its `champion` alias names, for those of `names`
    (none with a quote) that have one: one search per `NAMES_PER_SEARCH` names."""
    versions: dict[str, str] = {}
    for start in range(0, len(names), NAMES_PER_SEARCH):
        chunk = names[start : start + NAMES_PER_SEARCH]
        for model in client.search_registered_models(
            filter_string=named(chunk), max_results=len(chunk)
        ):
            version = model.aliases.get(CHAMPION)
            if version is not None:
                versions[model.name] = str(version)
    return versions


def named(names: Sequence[str]) -> str:
    return "name IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def answer(client: MlflowClient, line: str) -> str:
    """One request line's answer line."""
    try:
        return json.dumps({"versions": search_champion_aliases(client, json.loads(line))})
    except Exception as exc:  # any failed read is the caller's "registry unreachable"
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})


def serve() -> None:
    """The first line is the registry URI (not an argument: `ps` would show its password)."""
    answers, sys.stdout = sys.stdout, sys.stderr  # whatever a library prints is not an answer
    from mlflow import MlflowClient

    uri = sys.stdin.readline().strip()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for line in sys.stdin:
        answers.write(answer(client, line) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
