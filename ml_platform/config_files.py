"""Reading configuration files (datasets YAML, embedding-types YAML, `best_models.json`):
every error names the file and, where the parser knows it, the line and column.

`ConfigFileError` is a ValueError, so callers that report ValueErrors as a sentence keep doing
so; the CLI prints it without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A configuration file that cannot be read or does not say something valid."""


def read_text(path: Path, what: str) -> str:
    """The file's text as UTF-8; an empty or whitespace-only file is an error too."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw, exc.start)
        raise ConfigFileError(
            f"{what} {path}, line {line}, column {column}: not UTF-8 text (byte "
            f"0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise ConfigFileError(f"{what} {path} is empty; write the configuration or remove it")
    return text


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in `path`; syntax errors give the line and column."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigFileError(f"{what} {path}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{what} {path}: {exc}") from None


def read_json(path: Path, what: str) -> Any:
    """The JSON document in `path`; syntax errors give the line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(
            f"{what} {path}, line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def unknown_keys(found: dict[Any, Any], allowed: set[str], where: str) -> None:
    """A ConfigFileError naming the keys of `found` that are not in `allowed`."""
    unknown = sorted(str(k) for k in found if k not in allowed)
    if unknown:
        raise ConfigFileError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    return before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1
