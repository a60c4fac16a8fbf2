"""Launchpad forms of the pure configs: one source per knob.

`knobs_of(TrainingConfig)` is a `dg.Config` class with exactly the dataclass's fields and
defaults (read from the dataclass, never retyped), so the launchpad shows them and the
dataclass stays the one place a knob is declared and validated. Types the Dagster config
system cannot hold are shown in a plain form: a tuple as a list, an enum by its value.
`build` turns the launchpad values back into the dataclass (its own checks then run).
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import dagster as dg
import pydantic

P = TypeVar("P")


class PureKnobs(dg.Config):  # type: ignore[misc]
    """A dataclass's fields as launchpad config; `build` returns the dataclass."""

    def build(self, pure: type[P]) -> P:
        hints = get_type_hints(pure)
        values = {name: _to_pure(hints[name], value) for name, value in self.model_dump().items()}
        return pure(**values)


def knobs_of(pure: type[Any]) -> type[PureKnobs]:
    """A `PureKnobs` subclass mirroring the frozen dataclass `pure` field by field."""
    hints = get_type_hints(pure)
    fields: dict[str, Any] = {
        f.name: (_launchpad_type(hints[f.name]), _launchpad_value(_default(f)))
        for f in dataclasses.fields(pure)
    }
    doc = f"The fields of `{pure.__module__}.{pure.__qualname__}` (defaults from there)."
    return pydantic.create_model(  # type: ignore[no-any-return,call-overload]
        f"{pure.__name__}Knobs", __base__=PureKnobs, __doc__=doc, **fields
    )


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"config field {field.name!r} has no default; give it one to show it")


def _launchpad_type(hint: Any) -> Any:
    if get_origin(hint) is tuple:
        return list[_launchpad_type(get_args(hint)[0])]  # type: ignore[misc]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return str
    return hint


def _launchpad_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_launchpad_value(v) for v in value]
    return value.value if isinstance(value, Enum) else value


def _to_pure(hint: Any, value: Any) -> Any:
    if get_origin(hint) is tuple:
        return tuple(_to_pure(get_args(hint)[0], v) for v in value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value
