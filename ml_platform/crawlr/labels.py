"""Parse `GET /labels.json` (docs/crawlr.md) and turn feed pages into label states.

A reply that is not an object with a `labels` list is malformed as a whole
(`MalformedReplyError`); a row that breaks the contract is skipped with its reason in
`LabelsPage.malformed`, so one bad row never stops the others.
"""

from __future__ import annotations

import logging
from typing import Any

from ml_platform.crawlr.contract import MalformedReplyError, parse_page, parse_timestamp
from ml_platform.domain import ImageLabels, ImagePage, LabelsPage

log = logging.getLogger(__name__)
WHAT = "GET /labels.json"


def _ids(row: dict[str, Any], key: str, required: bool) -> tuple[int, ...]:
    if key not in row and not required:
        return ()
    values = row.get(key)
    if not isinstance(values, list) or not all(_is_int(v) for v in values):
        raise MalformedReplyError(
            f"label row of image {row.get('image_id')!r}: {key} must be a list of integers, "
            f"got {values!r}"
        )
    return tuple(sorted(set(values)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_label_row(row: Any) -> ImageLabels:
    """One row: `image_id` (int), `collection_ids` ([int]), `rejected_collection_ids` ([int],
    optional) and `updated_at` (ISO 8601)."""
    if not isinstance(row, dict) or not _is_int(row.get("image_id")):
        raise MalformedReplyError(f"{WHAT}: label row without an integer image_id: {row!r}")
    image_id = int(row["image_id"])
    return ImageLabels(
        image_id=image_id,
        collection_ids=_ids(row, "collection_ids", required=True),
        rejected_collection_ids=_ids(row, "rejected_collection_ids", required=False),
        updated_at=parse_timestamp(
            row.get("updated_at"), f"label row of image {image_id}", "updated_at"
        ),
    )


def parse_labels_page(raw: bytes | str) -> LabelsPage:
    rows, cursor, malformed = parse_page(raw, WHAT, "labels", parse_label_row)
    return LabelsPage(labels=rows, next_cursor=cursor, malformed=malformed)


def labels_of_feed(page: ImagePage) -> LabelsPage:
    """The label states an image feed page gives (the rescan and snapshot paths)."""
    rows = tuple(
        ImageLabels(
            image_id=image.id,
            collection_ids=tuple(sorted(set(image.collection_ids))),
            rejected_collection_ids=tuple(sorted(set(image.rejected_collection_ids))),
        )
        for image in page.images
    )
    return LabelsPage(labels=rows, next_cursor=page.next_cursor, malformed=page.malformed)
