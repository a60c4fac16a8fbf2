"""The parsed collections, as written by `crawlr_collections` and read downstream."""

from __future__ import annotations

from ml_platform.domain import Collection, Focus
from ml_platform.store.layout import Layout


def write_collections(layout: Layout, collections: list[Collection]) -> None:
    payload = [
        {
            "id": c.id,
            "name": c.name,
            "focus": c.focus.key if c.focus else None,
            "focus_id": c.focus_id,
            "unusable_reason": c.unusable_reason,
        }
        for c in collections
    ]
    layout.store.write_json(layout.collections(), payload)


def has_collections(layout: Layout) -> bool:
    return layout.store.exists(layout.collections())


def read_collections(layout: Layout) -> list[Collection]:
    """The stored collections; MissingInputError (materialize crawlr_collections) if none."""
    return [
        Collection(
            id=item["id"],
            name=item["name"],
            focus=Focus.from_key(item["focus"]) if item["focus"] else None,
            unusable_reason=item["unusable_reason"],
            focus_id=item["focus_id"],
        )
        for item in layout.store.read_json(layout.collections())
    ]


def foci_in_use(collections: list[Collection]) -> list[Focus]:
    """The distinct foci of usable collections, sorted."""
    return sorted({c.focus for c in collections if c.usable and c.focus is not None})
