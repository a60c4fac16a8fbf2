"""Parse crawlr replies (see docs/crawlr.md) into domain records.

A malformed reply raises `MalformedReplyError`. A collection whose focus is missing or names an
unknown type is *not* an error: it is returned unusable, with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from collections.abc import Collection as Names
from datetime import UTC, datetime
from typing import Any, TypeVar

from ml_platform.domain import Collection, DerivativeType, Focus, ImagePage, ImageRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

KNOWN_DERIVATIVES = [d.value for d in DerivativeType]


class MalformedReplyError(ValueError):
    """crawlr answered something that does not follow the contract."""


def loads(raw: bytes | str, what: str) -> Any:
    """JSON-decode a reply, tolerating a UTF-8 BOM and surrounding whitespace."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    try:
        return json.loads(text.strip())
    except json.JSONDecodeError as exc:
        snippet = text.strip()[:80]
        raise MalformedReplyError(
            f"{what}: not valid JSON ({exc}); reply began {snippet!r}"
        ) from exc


def _type_name(focus: dict[str, Any], key: str) -> str | None:
    nested = focus.get(key)
    if isinstance(nested, dict) and isinstance(nested.get("name"), str):
        return str(nested["name"])
    flat = focus.get(f"{key}_name")
    return flat if isinstance(flat, str) else None


def _unusable(cid: int, name: str, reason: str, focus_id: int | None = None) -> Collection:
    log.warning("collection %s (%s) is unusable: %s", cid, name, reason)
    return Collection(id=cid, name=name, focus=None, unusable_reason=reason, focus_id=focus_id)


def parse_focus(cid: int, name: str, raw: Any, known_embeddings: Names[str]) -> Collection:
    """Build a Collection from its `collection_focus` in either the nested or flattened shape."""
    if not isinstance(raw, dict) or not raw:
        return _unusable(cid, name, "no collection_focus")
    focus_id = raw.get("id") if isinstance(raw.get("id"), int) else None
    derivative = _type_name(raw, "derivative_type")
    embedding = _type_name(raw, "embedding_type")
    if derivative not in KNOWN_DERIVATIVES:
        reason = f"derivative_type={derivative!r} is unknown; known: {KNOWN_DERIVATIVES}"
        return _unusable(cid, name, reason, focus_id)
    if embedding not in known_embeddings:
        reason = f"embedding_type={embedding!r} is unknown; known: {sorted(known_embeddings)}"
        return _unusable(cid, name, reason, focus_id)
    focus = Focus(DerivativeType(derivative), str(embedding))
    return Collection(id=cid, name=name, focus=focus, focus_id=focus_id)


def parse_collections(raw: bytes | str, known_embeddings: Names[str]) -> list[Collection]:
    data = loads(raw, "GET /collections.json")
    if isinstance(data, dict) and isinstance(data.get("collections"), list):
        data = data["collections"]
    if not isinstance(data, list):
        raise MalformedReplyError(
            f"GET /collections.json: expected a list, got {type(data).__name__}"
        )
    out: list[Collection] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise MalformedReplyError(
                f"GET /collections.json: entry without an integer id: {item!r}"
            )
        name = str(item.get("name") or f"collection {item['id']}")
        out.append(parse_focus(item["id"], name, item.get("collection_focus"), known_embeddings))
    return out


def _int_list(item: dict[str, Any], key: str) -> tuple[int, ...]:
    values = item.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise MalformedReplyError(f"image {item.get('id')}: {key} must be a list of integers")
    return tuple(values)


def parse_timestamp(value: Any, where: str, field: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone); `where` and `field` name it in errors."""
    if not isinstance(value, str):
        raise MalformedReplyError(f"{where}: {field} missing or not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedReplyError(f"{where}: {field}={value!r} is not ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_image(item: Any) -> ImageRecord:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise MalformedReplyError(f"GET /images.json: image without an integer id: {item!r}")
    if not isinstance(item.get("url"), str) or not item["url"]:
        raise MalformedReplyError(f"image {item['id']}: url missing")
    pet = item.get("pet_id")
    if pet is not None and not isinstance(pet, int):
        raise MalformedReplyError(f"image {item['id']}: pet_id must be an integer or null")
    return ImageRecord(
        id=item["id"],
        url=item["url"],
        created_at=parse_timestamp(item.get("created_at"), f"image {item['id']}", "created_at"),
        pet_id=pet,
        collection_ids=_int_list(item, "collection_ids"),
        rejected_collection_ids=_int_list(item, "rejected_collection_ids"),
    )


def parse_page(
    raw: bytes | str, what: str, key: str, parse_row: Callable[[Any], T]
) -> tuple[tuple[T, ...], str | None, tuple[str, ...]]:
    """A paged reply `{key: [...], "next_cursor"}`: its rows, cursor and the reasons of the rows
    skipped as malformed. A reply without the list is malformed as a whole; one bad row never
    stops the others."""
    data = loads(raw, what)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise MalformedReplyError(f"{what}: expected an object with a '{key}' list")
    cursor = data.get("next_cursor")
    if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, str | int)):
        raise MalformedReplyError(f"{what}: next_cursor={cursor!r} is not a string")
    rows: list[T] = []
    malformed: list[str] = []
    for item in data[key]:
        try:
            rows.append(parse_row(item))
        except MalformedReplyError as exc:
            log.warning("%s: skipping a malformed entry: %s", what, exc)
            malformed.append(str(exc))
    return tuple(rows), None if cursor is None else str(cursor), tuple(malformed)


def parse_images_page(raw: bytes | str) -> ImagePage:
    images, cursor, malformed = parse_page(raw, "GET /images.json", "images", parse_image)
    return ImagePage(images=images, next_cursor=cursor, malformed=malformed)


def image_to_json(image: ImageRecord) -> dict[str, Any]:
    """The contract's JSON form of an image (used for snapshots and batch manifests)."""
    return {
        "id": image.id,
        "url": image.url,
        "pet_id": image.pet_id,
        "created_at": image.created_at.isoformat(),
        "collection_ids": list(image.collection_ids),
        "rejected_collection_ids": list(image.rejected_collection_ids),
    }
