"""CLI errors: one sentence saying what to do, and one exit code per kind of failure.

| exit | kind |
| --- | --- |
| 0 | done |
| 1 | a pipeline run failed, or an unexpected error (`-v` shows the traceback) |
| 2 | usage or a bad setting (the variable and option are named) |
| 3 | no platform home (or its model registry) where the command reads one |
| 4 | a file the command reads is missing or malformed, or names what does not exist |
| 5 | crawlr (or another service the command needs) did not answer |

`PlatformGroup` turns what a command raises into such a message: a settings validation
error names the environment variable (and the option, when one set it); any other error is
its one-line reason. `-v` prints the traceback as well. Commands that only read a home call
`require_home` so a typo never creates a new, empty one.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ml_platform.redact import redact_text
from ml_platform.settings import Settings

ENV_PREFIX = "ML_PLATFORM_"
OPTIONS = {"home": "--home", "crawlr": "--crawlr"}
SECRET_FIELDS = frozenset({"serve_token"})
VERBOSE = "ml_platform.verbose"


class SettingsError(click.ClickException):
    """A setting has a bad value (exit code 2)."""

    exit_code = 2


class MissingHomeError(click.ClickException):
    """No platform home, or no registry in it (exit code 3)."""

    exit_code = 3


class InputFileError(click.ClickException):
    """A file the command reads is missing, malformed or names unknown things (exit code 4)."""

    exit_code = 4


class UnreachableError(click.ClickException):
    """crawlr or another service the command needs did not answer (exit code 5)."""

    exit_code = 5


class RunFailedError(click.ClickException):
    """A Dagster run failed (exit code 1); the message is its first failure."""

    exit_code = 1


class PlatformGroup(click.Group):
    """A click group whose commands fail with short messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ValidationError as exc:
            _traceback_if_verbose(ctx)
            raise SettingsError(settings_message(exc)) from exc
        except Exception as exc:
            _traceback_if_verbose(ctx)
            hint = "" if ctx.meta.get(VERBOSE) else "\n(run `ml-platform -v ...` for the traceback)"
            raise click.ClickException(one_line(exc) + hint) from exc


def settings_message(exc: ValidationError) -> str:
    """`ML_PLATFORM_X (or --x): what is wrong` per bad setting."""
    lines = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        where = f"{ENV_PREFIX}{field.upper()}"
        if field in OPTIONS:
            where += f" (or {OPTIONS[field]})"
        message = str(error["msg"]).removeprefix("Value error, ")
        if field not in SECRET_FIELDS and "input" in error and field not in ("crawlr",):
            message += f" (got {str(error['input'])[:80]!r})"
        lines.append(f"{where}: {redact_text(message)}; fix or unset it")
    return "\n".join(lines)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(text if len(text) <= 400 else text[:400] + " ...")


def require_home(settings: Settings, *, registry: bool = True) -> None:
    """Refuse to go on when the home does not exist yet, or (``registry``) when the sqlite
    registry file the tracking URI names is missing. A server registry is not checked here."""
    home = settings.resolved_home
    if not home.is_dir():
        raise MissingHomeError(
            f"no platform home at {home}; run `ml-platform demo` or `ml-platform run` to make "
            "one, or point --home / ML_PLATFORM_HOME at an existing one"
        )
    path = sqlite_file(settings.tracking_uri)
    if registry and path is not None and not path.is_file():
        raise MissingHomeError(
            f"there is no model registry at {path} (ML_PLATFORM_MLFLOW_TRACKING_URI="
            f"{settings.tracking_uri}); run `ml-platform demo` or `ml-platform run` first, or "
            "point ML_PLATFORM_MLFLOW_TRACKING_URI at an existing registry"
        )


def sqlite_file(uri: str) -> Path | None:
    """The file a ``sqlite:///`` tracking URI names; None for any other kind of store."""
    from sqlalchemy.engine import make_url

    if not uri.startswith("sqlite:"):
        return None
    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None


def _traceback_if_verbose(ctx: click.Context) -> None:
    if ctx.meta.get(VERBOSE):
        click.echo(traceback.format_exc(), err=True)
