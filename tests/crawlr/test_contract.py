from __future__ import annotations

import json

import pytest

from ml_platform.crawlr.contract import MalformedReplyError, parse_collections, parse_images_page
from ml_platform.domain import DerivativeType, Focus

KNOWN = ["embed_clip_vit_b_32", "embed_dino_v2"]
NESTED = {
    "id": 7, "name": "faces",
    "collection_focus": {"id": 123, "derivative_type": {"name": "prominent_face"},
                         "embedding_type": {"name": "embed_dino_v2"}},
}  # fmt: skip
FLAT = {
    "id": 8, "name": "cats",
    "collection_focus": {"derivative_type_name": "whole_image",
                         "embedding_type_name": "embed_clip_vit_b_32"},
}  # fmt: skip


def test_parses_both_focus_shapes_with_bom_and_whitespace() -> None:
    raw = "\ufeff  \n" + json.dumps([NESTED, FLAT]) + "\n\n"
    faces, cats = parse_collections(raw.encode("utf-8"), KNOWN)
    assert faces.focus == Focus(DerivativeType.PROMINENT_FACE, "embed_dino_v2")
    assert faces.focus_id == 123
    assert cats.focus == Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
    assert faces.usable and cats.usable


@pytest.mark.parametrize(
    ("focus", "reason_part"),
    [
        (None, "no collection_focus"),
        ({}, "no collection_focus"),
        ({"derivative_type_name": "whole_body", "embedding_type_name": "embed_dino_v2"},
         "derivative_type='whole_body' is unknown"),
        ({"derivative_type_name": "whole_image", "embedding_type_name": "embed_siglip"},
         "embedding_type='embed_siglip' is unknown; known: ['embed_clip_vit_b_32'"),
    ],
)  # fmt: skip
def test_collection_without_usable_focus_is_kept_and_marked(
    focus: object, reason_part: str
) -> None:
    (collection,) = parse_collections(
        json.dumps([{"id": 1, "name": "x", "collection_focus": focus}]), KNOWN
    )
    assert not collection.usable
    assert collection.unusable_reason is not None and reason_part in collection.unusable_reason


@pytest.mark.parametrize("raw", ["{not json", '{"images": 3}', "[1, 2]"])
def test_malformed_replies_raise_clear_errors(raw: str) -> None:
    with pytest.raises(MalformedReplyError, match=r"GET /(collections|images)\.json"):
        if raw.startswith("["):
            parse_collections(raw, KNOWN)
        else:
            parse_images_page(raw)


def test_malformed_image_entry_is_skipped_not_fatal() -> None:
    raw = json.dumps({"images": [
        {"id": 1, "url": "/a.jpg", "created_at": "2025-01-01T00:00:00Z", "collection_ids": [2]},
        {"id": 2, "created_at": "2025-01-01T00:00:00Z"},
        {"id": 3, "url": "/c.jpg", "created_at": "yesterday"},
    ], "next_cursor": None})  # fmt: skip
    page = parse_images_page(raw)
    assert [im.id for im in page.images] == [1]
    assert page.images[0].collection_ids == (2,)
    assert len(page.malformed) == 2
    assert "url missing" in page.malformed[0] and "not ISO 8601" in page.malformed[1]
