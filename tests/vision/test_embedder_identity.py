"""One embedder identity: Parquet columns, MLflow tags and serving keys read back as written,
and what older versions wrote reads as the embedder that made it."""

from __future__ import annotations

import pytest

from ml_platform.domain import WeightsStatus
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.identity import UNKNOWN, EmbedderIdentity, EmbedderKey

CLIP = "embed_clip_vit_b_32"
FACE = "embed_face_custom"
# The embedder tags of a classifier as `ClassifierProvenance.tags` wrote them before the
# identity: a face-aligned custom type on INT8 put its backend before the alignment suffix.
OLD_FACE_TAGS = {
    "collection_id": "7",
    "derivative_type": "prominent_face",
    "embedding_type": FACE,
    "embedder_id": "/models/arcface.onnx",
    "embedder_revision": "sha256:0f0f+onnx-int8+align-five-point",
    "weights": "pretrained",
    "dimensionality": "512",
}
ALIGNED_INT8 = EmbedderIdentity(
    FACE, "/models/arcface.onnx", "sha256:0f0f+align-five-point", Backend.ONNX_INT8
)


@pytest.mark.parametrize("backend", [None, *Backend])
@pytest.mark.parametrize("weights", list(WeightsStatus))
def test_tags_and_columns_read_back_the_same_identity(
    backend: Backend | None, weights: WeightsStatus
) -> None:
    who = EmbedderIdentity(CLIP, "openai/clip-vit-base-patch32", "abc+x", backend, weights)
    assert EmbedderIdentity.from_tags(who.to_tags()) == who
    columns = who.to_columns(3)
    assert list(columns) == list(who.to_tags())  # one set of names for both homes
    rows = [{name: values[i] for name, values in columns.items()} for i in range(3)]
    assert [EmbedderIdentity.from_columns(row) for row in rows] == [who] * 3


def test_the_backend_rides_in_the_revision_only_off_the_native_runtime() -> None:
    torch_one = EmbedderIdentity(CLIP, "m", "abc")
    int8 = torch_one.on(Backend.ONNX_INT8, native=Backend.TORCH)
    assert (torch_one.revision, int8.revision) == ("abc", "abc+onnx-int8")
    assert int8.on(Backend.TORCH, native=Backend.TORCH) == torch_one
    custom = EmbedderIdentity(FACE, "f.onnx", "sha256:0f")
    assert custom.on(Backend.ONNX, native=Backend.ONNX).revision == "sha256:0f"
    assert custom.on(Backend.ONNX_INT8, native=Backend.ONNX).backend is Backend.ONNX_INT8


def test_tags_written_before_the_identity_read_as_the_embedder_that_made_them() -> None:
    old = EmbedderIdentity.from_tags(OLD_FACE_TAGS)
    assert old == ALIGNED_INT8
    assert old.revision == "sha256:0f0f+align-five-point+onnx-int8"  # written from now on
    assert EmbedderIdentity.from_tags(old.to_tags()) == EmbedderIdentity.from_tags(OLD_FACE_TAGS)


def test_tags_a_version_does_not_carry_read_as_unknown_and_pretrained() -> None:
    legacy = {"embedding_type": CLIP, "embedder_id": "openai/clip-vit-base-patch32"}
    who = EmbedderIdentity.from_tags(legacy)
    assert who == EmbedderIdentity(CLIP, "openai/clip-vit-base-patch32", UNKNOWN)
    assert EmbedderIdentity.from_tags({}).embedding_type == UNKNOWN


def test_a_null_column_reads_as_a_missing_one() -> None:
    row = {"embedding_type": CLIP, "embedder_id": "m", "embedder_revision": None, "weights": None}
    assert EmbedderIdentity.from_columns(row) == EmbedderIdentity(CLIP, "m", UNKNOWN)


def test_unreadable_weights_name_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'half' of embed_clip_vit_b_32 .*pretrained"):
        EmbedderIdentity.from_tags({"embedding_type": CLIP, "weights": "half"})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (CLIP, EmbedderKey(CLIP)),
        (f"{CLIP}@random", EmbedderKey(CLIP, random=True)),
        (f"{CLIP}:onnx-int8", EmbedderKey(CLIP, backend=Backend.ONNX_INT8)),
        (f"{CLIP}@random:onnx", EmbedderKey(CLIP, random=True, backend=Backend.ONNX)),
        ("my:type", EmbedderKey("my:type")),  # an unknown suffix is part of the type
    ],
)
def test_serving_keys_have_one_grammar(text: str, key: EmbedderKey) -> None:
    assert EmbedderKey.parse(text) == key
    assert str(key) == text
    assert key.on(Backend.TORCH).on(None) == key.on(None)
