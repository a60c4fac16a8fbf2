"""Fixed chip views (faces.views) and the view sets of embed_face_dlib_resnet_v1.

Constructed chips (drawn shapes, seeded noise); the embedder tests run dlib's real ResNet (the
[faces] extra) and skip with the reason when its model files are absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.vision.embedders import EmbedderOptions, build_embedder
from ml_platform.vision.embedders.dlib_face import DEFAULT_VIEWS, DlibFaceEmbedder
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.faces.views import (
    VIEW_SETS,
    ChipView,
    view_chip,
    view_chips,
    view_set,
    with_mirrors,
)

pytest.importorskip("dlib", reason="the [faces] extra (dlib-bin) is not installed")

SIZE = 150


def square_chip(side: int = 60) -> np.ndarray:
    """A black chip with a centred white square."""
    chip = np.zeros((SIZE, SIZE, 3), np.uint8)
    start = (SIZE - side) // 2
    chip[start : start + side, start : start + side] = 255
    return chip


def noise_chip(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def test_each_set_holds_each_view_with_its_mirror_and_grows_from_the_smaller() -> None:
    sizes = {name: len(views) for name, views in VIEW_SETS.items()}
    assert sizes == {"plain": 1, "mirror": 2, "zoom4": 4, "turn8": 8}
    for name, views in VIEW_SETS.items():
        assert len(set(views)) == len(views), name
        if name != "plain":
            assert all(view.mirrored() in views for view in views), name
    assert VIEW_SETS["mirror"] == with_mirrors(ChipView())
    assert VIEW_SETS["zoom4"][:2] == VIEW_SETS["mirror"]
    assert VIEW_SETS["zoom4"][2:] == with_mirrors(ChipView(scale=0.975))
    assert VIEW_SETS["turn8"][:4] == VIEW_SETS["zoom4"]
    assert {v.angle for v in VIEW_SETS["turn8"][4:]} == {2.0, -2.0}


def test_unknown_sets_and_large_changes_are_refused() -> None:
    with pytest.raises(ValueError, match="known: "):
        view_set("jitter100")
    with pytest.raises(ValueError, match="small change"):
        ChipView(scale=2.0)
    with pytest.raises(ValueError, match="small change"):
        ChipView(angle=90.0)


def test_the_identity_view_is_the_chip_and_the_mirror_its_flip() -> None:
    chip = noise_chip(0)
    assert np.array_equal(view_chip(chip, ChipView()), chip)
    assert np.array_equal(view_chip(chip, ChipView(mirror=True)), chip[:, ::-1])
    # the same window resampled by dlib's rotating path: the chip again inside its 1 px edge
    resampled = view_chip(chip, ChipView(scale=1.0, angle=1e-9)).astype(int)
    assert np.abs(resampled - chip)[1:-1, 1:-1].max() <= 1


def test_a_zoomed_view_enlarges_the_face_about_its_centre() -> None:
    chip = square_chip()
    zoomed = view_chip(chip, ChipView(scale=0.9))
    white = (zoomed[..., 0] > 127).sum() / (chip[..., 0] > 127).sum()
    assert white == pytest.approx(1 / 0.9**2, rel=0.05)
    rows, cols = np.nonzero(zoomed[..., 0] > 127)
    assert rows.mean() == pytest.approx((SIZE - 1) / 2, abs=0.6)
    assert cols.mean() == pytest.approx((SIZE - 1) / 2, abs=0.6)


def test_turned_views_are_mirror_images_of_each_other() -> None:
    chip = np.zeros((SIZE, SIZE, 3), np.uint8)
    chip[70:80, 20:130] = 255  # a horizontal bar
    left, right = view_chip(chip, ChipView(angle=5.0)), view_chip(chip, ChipView(angle=-5.0))
    assert not np.array_equal(left, chip)
    ends = [np.nonzero(view[:, c, 0] > 127)[0].mean() for view in (left, right) for c in (30, 119)]
    assert abs(ends[0] - ends[1]) > 5 and abs(ends[2] - ends[3]) > 5  # the bar is tilted
    assert np.sign(ends[0] - ends[1]) == -np.sign(ends[2] - ends[3])  # the other way round
    flipped = view_chip(np.ascontiguousarray(chip[:, ::-1]), ChipView(angle=5.0))[:, ::-1]
    assert np.abs(flipped.astype(int) - right.astype(int)).max() <= 1


def test_views_are_deterministic_and_stacked_by_view() -> None:
    chips = np.stack([noise_chip(1), noise_chip(2)])
    turned = (ChipView(0.975, 2.0), ChipView(0.975, -2.0, mirror=True))
    views = view_chips(chips, (*VIEW_SETS["zoom4"], *turned))
    assert views.shape == (6, 2, SIZE, SIZE, 3) and views.dtype == np.uint8
    assert np.array_equal(views, view_chips(chips, (*VIEW_SETS["zoom4"], *turned)))
    assert np.array_equal(views[5, 1], view_chip(chips[1], turned[1]))


@pytest.fixture(scope="module")
def models() -> None:
    from ml_platform.vision.faces.model_files import (
        FaceModelFile,
        FacesExtraMissingError,
        model_path,
    )

    for file in (FaceModelFile.RESNET_V1, FaceModelFile.LANDMARKS_5):
        try:
            model_path(file)
        except FacesExtraMissingError as exc:
            pytest.skip(f"dlib's model files are not installed: {exc}")


def embedder(views: str) -> DlibFaceEmbedder:
    return DlibFaceEmbedder(EmbedderOptions(), views=views)


@pytest.mark.parametrize(
    ("views", "suffix"),
    [("plain", "+align-v2"), ("mirror", "+align-v2+mirror"), ("zoom4", "+align-v2+views-zoom4"),
     ("turn8", "+align-v2+views-turn8")],
)  # fmt: skip
def test_the_revision_names_the_view_set(models: None, views: str, suffix: str) -> None:
    face = embedder(views)
    assert face.revision.endswith(suffix) and face.view_set == VIEW_SETS[views]
    identity = EmbedderIdentity.of(face)
    assert EmbedderIdentity.from_tags(identity.to_tags()) == identity
    with pytest.raises(ValueError, match="known: "):
        embedder("jitter100")


def test_the_default_is_the_documented_set_and_others_differ_in_identity(models: None) -> None:
    default = build_embedder("embed_face_dlib_resnet_v1", EmbedderOptions())
    assert isinstance(default, DlibFaceEmbedder) and default.views == DEFAULT_VIEWS
    revisions = {EmbedderIdentity.of(embedder(name)).revision for name in VIEW_SETS}
    assert len(revisions) == len(VIEW_SETS)


@pytest.mark.parametrize("views", ["mirror", "zoom4"])
def test_the_same_face_twice_gives_the_same_vector(models: None, views: str) -> None:
    chip = noise_chip(3)
    chips = np.stack([chip, noise_chip(4), chip])
    first = embedder(views).embed_preprocessed(chips)
    again = embedder(views).embed_preprocessed(chip[None])
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[0], again[0])
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(first[0], first[1], atol=1e-3)


def test_the_vector_is_the_unit_mean_of_the_set_views_descriptors(models: None) -> None:
    chips = np.stack([noise_chip(5), square_chip()])
    face, plain = embedder("zoom4"), embedder("plain")
    views = face.view_descriptors(chips)
    assert views.shape == (4, 2, 128)
    for k, view in enumerate(face.view_set):
        alone = plain.view_descriptors(view_chips(chips, (view,))[0])[0]
        assert np.allclose(views[k], alone, atol=1e-6), view.name
    unit = views / np.linalg.norm(views, axis=2, keepdims=True)
    mean = unit.mean(axis=0)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.allclose(face.embed_preprocessed(chips), expected, atol=1e-6)
    assert not np.allclose(
        face.embed_preprocessed(chips), embedder("mirror").embed_preprocessed(chips), atol=1e-4
    )
