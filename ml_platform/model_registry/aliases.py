"""Promotion with MLflow aliases: `champion`, `challenger`, and a promotion history.

The history is a registered-model tag (`promotion_history`) holding a JSON list, oldest first:
`[{"version": "3", "at": "2025-01-01T12:00:00+00:00", "reason": "...", "previous": "2",
"action": "promote"}, ...]`. `previous` is the champion version before the change (null when
there was none); `action` is `promote` or `rollback`. A rollback follows the chain of
promotions back: it restores the `previous` of the promotion that made the current champion.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from ml_platform import alerts
from ml_platform.model_registry.versions import (
    GATE_TAG,
    HISTORY_TAG,
    Alias,
    ModelNotFoundError,
    alias_version,
    registered_model_or_none,
)

log = logging.getLogger(__name__)

FLOAT_SLACK = 1e-9  # gates: 0.80 - 0.78 is 0.0200000000000000018, that is not beyond 0.02
MAX_TAG_CHARS = 4000  # MLflow's sqlite store refuses longer version tag values
MAX_HISTORY_ENTRIES = 200  # the oldest entries are dropped beyond this (tag size limit)


@dataclass(frozen=True)
class PromotionDecision:
    """What a family's gate (`collection.gate`, `dataset.gate`) decided: promote or not, and a
    sentence saying why."""

    promote: bool
    reason: str


class NoPreviousChampionError(LookupError):
    """A rollback was asked for but there is no earlier champion to return to."""


@dataclass(frozen=True)
class PromotionEntry:
    """One change of the champion alias."""

    version: str
    at: str
    reason: str
    previous: str | None
    action: Literal["promote", "rollback"] = "promote"


def read_history(model: RegisteredModel) -> list[PromotionEntry]:
    """The promotion history stored on a registered model (empty when none yet)."""
    raw = model.tags.get(HISTORY_TAG)
    if not raw:
        return []
    try:
        return [PromotionEntry(**entry) for entry in json.loads(raw)]
    except (json.JSONDecodeError, TypeError) as error:
        raise ValueError(
            f"registered model {model.name!r} has an unreadable {HISTORY_TAG} tag "
            f"({error}); fix or delete the tag in the MLflow UI"
        ) from error


def promote_model(client: MlflowClient, name: str, version: str, reason: str) -> PromotionEntry:
    """Point `champion` at `version`, drop `challenger` if it pointed there, record history.

    Promoting the version that already is champion changes nothing and returns its entry.
    """
    model = _require_model(client, name)
    _require_version(client, name, version)
    previous = alias_version(model, Alias.CHAMPION)
    if previous == version:
        log.info("%s version %s already is champion; nothing to do", name, version)
        return _complete_promotion(client, model, version, reason)
    return _move_champion(client, model, _entry(version, reason, previous))


def rollback_model(
    client: MlflowClient, name: str, reason: str = "rollback", subject: str | None = None
) -> PromotionEntry:
    """Move `champion` back to the champion before the current one's promotion.

    When the alias was moved outside ml_platform (e.g. in the MLflow UI), the current champion
    has no promotion entry; the rollback then returns to the last champion the history records.
    `subject` names the model in errors (`collection 7`; default: its name).
    """
    model = _require_model(client, name)
    current = alias_version(model, Alias.CHAMPION)
    history = read_history(model)
    promoted = _latest_entry_for(history, current, action="promote")
    target = promoted.previous if promoted is not None else _last_recorded(history, current)
    if current is None or target is None:
        raise NoPreviousChampionError(
            f"{subject or name} has no previous champion to roll back to "
            f"(current champion: {current or 'none'}); promote a version instead"
        )
    _require_version(client, name, target)
    entry = _entry(target, f"{reason} (from version {current})", current, "rollback")
    return _move_champion(client, model, entry)


def _last_recorded(history: list[PromotionEntry], current: str | None) -> str | None:
    """The newest champion in the history other than `current` (alias moved in the UI)."""
    if not history or history[-1].version == current:
        return None
    return history[-1].version


def _move_champion(
    client: MlflowClient, model: RegisteredModel, entry: PromotionEntry
) -> PromotionEntry:
    """History first, then the alias, then the stale challenger alias: a crash between any two
    steps leaves a state the next `promote` of the same version completes without a second
    history entry (`_history_with`)."""
    history = _history_with(read_history(model), entry)
    payload = json.dumps([asdict(item) for item in history])
    client.set_registered_model_tag(model.name, HISTORY_TAG, payload)
    client.set_registered_model_alias(model.name, Alias.CHAMPION.value, entry.version)
    if alias_version(model, Alias.CHALLENGER) == entry.version:
        client.delete_registered_model_alias(model.name, Alias.CHALLENGER.value)
    alerts.notify_champion_change(client, model.name, entry.version, entry.previous, entry.action,
                                  entry.reason)  # fmt: skip
    log.info(
        "%s: champion %s -> %s (%s: %s)",
        model.name,
        entry.previous,
        entry.version,
        entry.action,
        entry.reason,
    )
    return entry


def _history_with(history: list[PromotionEntry], entry: PromotionEntry) -> list[PromotionEntry]:
    """`history` with `entry` appended, unless its last entry already records the same change
    (written before a crash that came before the alias moved)."""
    last = history[-1] if history else None
    if last is not None and (last.version, last.previous, last.action) == (
        entry.version, entry.previous, entry.action,
    ):  # fmt: skip
        return history
    return [*history, entry][-MAX_HISTORY_ENTRIES:]


def _complete_promotion(
    client: MlflowClient, model: RegisteredModel, version: str, reason: str
) -> PromotionEntry:
    """`version` already is champion: finish what a crash may have left (challenger alias
    still on it, no history entry) and return its entry."""
    if alias_version(model, Alias.CHALLENGER) == version:
        client.delete_registered_model_alias(model.name, Alias.CHALLENGER.value)
    found = _latest_entry_for(read_history(model), version)
    if found is not None:
        return found
    return _move_champion(client, model, _entry(version, reason, None))


def mark_gated(client: MlflowClient, name: str, version: str, reason: str) -> None:
    """Record that the gate decided about `version` (the last step of a training decision)."""
    client.set_model_version_tag(name, version, GATE_TAG, reason[:MAX_TAG_CHARS])


def gate_decision(client: MlflowClient, name: str, version: str) -> str | None:
    """The gate's recorded decision about `version`, or None when no gate completed."""
    return client.get_model_version(name, version).tags.get(GATE_TAG)


def _entry(
    version: str,
    reason: str,
    previous: str | None,
    action: Literal["promote", "rollback"] = "promote",
) -> PromotionEntry:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return PromotionEntry(version=version, at=at, reason=reason, previous=previous, action=action)


def _latest_entry_for(
    history: list[PromotionEntry], version: str | None, action: str | None = None
) -> PromotionEntry | None:
    matches = [e for e in history if e.version == version and action in (None, e.action)]
    return matches[-1] if matches else None


def _require_model(client: MlflowClient, name: str) -> RegisteredModel:
    model = registered_model_or_none(client, name)
    if model is None:
        raise ModelNotFoundError(f"no registered model {name!r}; train and register one first")
    return model


def _require_version(client: MlflowClient, name: str, version: str) -> None:
    try:
        client.get_model_version(name, str(version))
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise ModelNotFoundError(
            f"{name} has no model version {version}; list its versions with "
            "`ml-platform models show` or in the MLflow UI"
        ) from error
