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
from ml_platform.model_registry.naming import Alias, ModelTag, VersionTag, model_name

log = logging.getLogger(__name__)

GATE_TAG = VersionTag.GATE_DECISION.value  # the same key on dataset model versions
MAX_TAG_CHARS = 4000  # MLflow's sqlite store refuses longer version tag values
MAX_HISTORY_ENTRIES = 200  # the oldest entries are dropped beyond this (tag size limit)


class ModelNotFoundError(LookupError):
    """No registered model, or no such version, for a collection."""


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


def registered_model_or_none(client: MlflowClient, name: str) -> RegisteredModel | None:
    """The registered model `name`, or None when it does not exist (other errors propagate)."""
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def alias_version(model: RegisteredModel, alias: Alias) -> str | None:
    """The version an alias points at, or None."""
    version = model.aliases.get(alias.value)
    return None if version is None else str(version)


def read_history(model: RegisteredModel) -> list[PromotionEntry]:
    """The promotion history stored on a registered model (empty when none yet)."""
    raw = model.tags.get(ModelTag.PROMOTION_HISTORY.value)
    if not raw:
        return []
    try:
        return [PromotionEntry(**entry) for entry in json.loads(raw)]
    except (json.JSONDecodeError, TypeError) as error:
        raise ValueError(
            f"registered model {model.name!r} has an unreadable {ModelTag.PROMOTION_HISTORY} tag "
            f"({error}); fix or delete the tag in the MLflow UI"
        ) from error


def promote(client: MlflowClient, collection_id: int, version: str, reason: str) -> PromotionEntry:
    """Point `champion` at `version`, drop `challenger` if it pointed there, record history.

    Promoting the version that already is champion changes nothing and returns its entry.
    """
    name = model_name(collection_id)
    model = _require_model(client, collection_id)
    _require_version(client, collection_id, version)
    previous = alias_version(model, Alias.CHAMPION)
    if previous == version:
        log.info("%s version %s already is champion; nothing to do", name, version)
        return _complete_promotion(client, model, version, reason)
    return _move_champion(client, model, _entry(version, reason, previous))


def promote_model(client: MlflowClient, name: str, version: str, reason: str) -> PromotionEntry:
    """`promote` for any registered model by name (e.g. a `dataset-<name>` classifier)."""
    model = registered_model_or_none(client, name)
    if model is None:
        raise ModelNotFoundError(f"no registered model {name!r}; train and register one first")
    client.get_model_version(name, str(version))  # raises when the version does not exist
    previous = alias_version(model, Alias.CHAMPION)
    if previous == version:
        return _complete_promotion(client, model, version, reason)
    return _move_champion(client, model, _entry(version, reason, previous))


def rollback(client: MlflowClient, collection_id: int, reason: str = "rollback") -> PromotionEntry:
    """Move `champion` back to the champion before the current one's promotion.

    When the alias was moved outside ml_platform (e.g. in the MLflow UI), the current champion
    has no promotion entry; the rollback then returns to the last champion the history records.
    """
    model = _require_model(client, collection_id)
    current = alias_version(model, Alias.CHAMPION)
    history = read_history(model)
    promoted = _latest_entry_for(history, current, action="promote")
    target = promoted.previous if promoted is not None else _last_recorded(history, current)
    if current is None or target is None:
        raise NoPreviousChampionError(
            f"collection {collection_id} has no previous champion to roll back to "
            f"(current champion: {current or 'none'}); promote a version instead"
        )
    _require_version(client, collection_id, target)
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
    client.set_registered_model_tag(model.name, ModelTag.PROMOTION_HISTORY.value, payload)
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


def _require_model(client: MlflowClient, collection_id: int) -> RegisteredModel:
    model = registered_model_or_none(client, model_name(collection_id))
    if model is None:
        raise ModelNotFoundError(
            f"collection {collection_id} has no registered model {model_name(collection_id)!r}; "
            "train and register a classifier first"
        )
    return model


def _require_version(client: MlflowClient, collection_id: int, version: str) -> None:
    try:
        client.get_model_version(model_name(collection_id), str(version))
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise ModelNotFoundError(
            f"collection {collection_id} has no model version {version}; "
            f"list its versions with `ml-platform models show {collection_id}`"
        ) from error
