"""Face and person detection on the real photos in ../shared/data, and derivative crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_platform.domain import Box, DerivativeType
from ml_platform.vision.crops import crop_for
from ml_platform.vision.decode import load_rgb
from ml_platform.vision.detectors import DetectionResult, Detector, get_detector

SINGLE_PEOPLE = [f"img{i}.jpg" for i in range(1, 26)]
NO_DETECTION = DetectionResult(None, None, "hog", "yunet", 0)


@pytest.fixture(scope="module")
def faces_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "faces"


@pytest.fixture(scope="module")
def yunet(yunet_onnx: Path) -> Detector:
    return Detector(yunet_model=yunet_onnx, person_onnx=None)


@pytest.fixture(scope="module")
def cat_photos(pet_photos: dict[str, list[Path]]) -> list[Path]:
    cats = ["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau"]
    return [pet_photos[breed][i] for breed in cats for i in (0, 5)]


def _inside(inner: Box, outer: Box) -> bool:
    return (
        outer.x0 <= inner.x0 < inner.x1 <= outer.x1 and outer.y0 <= inner.y0 < inner.y1 <= outer.y1
    )


@pytest.mark.parametrize("name", SINGLE_PEOPLE)
def test_yunet_finds_the_face_in_each_single_person_photo(
    yunet: Detector, faces_dir: Path, name: str
) -> None:
    image = load_rgb(faces_dir / name)
    faces = yunet.detect_faces(image)
    assert len(faces) >= 1
    assert faces[0].score >= 0.9
    assert _inside(faces[0], Box(0, 0, image.width, image.height))


@pytest.mark.parametrize(("name", "count"), [("selfie-many-people.jpg", 6), ("couple.jpg", 2)])
def test_yunet_counts_the_faces_in_group_photos(
    yunet: Detector, faces_dir: Path, name: str, count: int
) -> None:
    assert len(yunet.detect_faces(load_rgb(faces_dir / name))) == count


def test_yunet_finds_no_face_on_cat_photos(yunet: Detector, cat_photos: list[Path]) -> None:
    found = {p.name: yunet.detect_faces(load_rgb(p)) for p in cat_photos}
    assert {name: faces for name, faces in found.items() if faces} == {}


def test_detect_reports_the_prominent_face_and_the_detectors(
    yunet: Detector, faces_dir: Path
) -> None:
    image = load_rgb(faces_dir / "img1.jpg")
    result = yunet.detect(image)
    assert (result.face_detector, result.person_detector) == ("yunet", "hog+face-extrapolated")
    assert result.faces_found == 1
    assert result.face is not None
    assert result.face.area > 0.05 * image.width * image.height
    person = result.person  # HOG finds no whole body in a portrait: estimated from the face
    assert person is not None and person.x0 <= result.face.x0 and person.y1 > result.face.y1
    assert person.score == pytest.approx(result.face.score / 2)


def test_detect_on_a_cat_photo_has_no_face(yunet: Detector, cat_photos: list[Path]) -> None:
    result = yunet.detect(load_rgb(cat_photos[0]))
    assert (result.face, result.faces_found) == (None, 0)


def test_prominent_face_of_the_selfie_is_one_of_its_faces(yunet: Detector, faces_dir: Path) -> None:
    image = load_rgb(faces_dir / "selfie-many-people.jpg")
    result = yunet.detect(image)
    assert result.face in yunet.detect_faces(image)


def test_haar_fallback_is_flagged_and_finds_a_frontal_face(faces_dir: Path) -> None:
    detector = Detector(yunet_model=None, person_onnx=None)
    result = detector.detect(load_rgb(faces_dir / "img1.jpg"))
    assert result.face_detector == "haar"
    assert result.face is not None


def test_missing_yunet_file_is_a_clear_error(tmp_path: Path) -> None:
    detector = Detector(yunet_model=tmp_path / "nope.onnx", person_onnx=None)
    with pytest.raises(FileNotFoundError, match="ML_PLATFORM_YUNET_MODEL"):
        detector.detect_faces(Image.new("RGB", (64, 64)))


def test_get_detector_caches_per_arguments(tmp_path: Path) -> None:
    first = get_detector(yunet_model=tmp_path / "a.onnx", person_onnx=None)
    assert get_detector(yunet_model=tmp_path / "a.onnx", person_onnx=None) is first
    assert get_detector(yunet_model=tmp_path / "b.onnx", person_onnx=None) is not first


def test_crop_for_whole_image_returns_the_image() -> None:
    image = Image.new("RGB", (40, 30))
    assert crop_for(image, DerivativeType.WHOLE_IMAGE, NO_DETECTION) is image


@pytest.mark.parametrize(
    "derivative", [DerivativeType.PROMINENT_FACE, DerivativeType.PROMINENT_PERSON]
)
def test_crop_for_is_none_without_that_detection(derivative: DerivativeType) -> None:
    assert crop_for(Image.new("RGB", (40, 30)), derivative, NO_DETECTION) is None


def test_crop_for_face_adds_the_margin_and_clamps() -> None:
    result = DetectionResult(None, Box(10, 10, 20, 30, 0.9), "hog", "yunet", 1)
    crop = crop_for(Image.new("RGB", (40, 32)), DerivativeType.PROMINENT_FACE, result, margin=0.5)
    assert crop is not None
    assert crop.size == (20, 32)  # x 5..25, y 0..32 (40 tall, clamped)


def test_crop_for_person_uses_the_person_box() -> None:
    result = DetectionResult(Box(0, 0, 10, 20, 0.9), None, "hog", "yunet", 0)
    crop = crop_for(Image.new("RGB", (40, 40)), DerivativeType.PROMINENT_PERSON, result, margin=0)
    assert crop is not None
    assert crop.size == (10, 20)


def test_no_face_gives_no_face_crop_on_a_real_cat_photo(
    yunet: Detector, cat_photos: list[Path]
) -> None:
    image = load_rgb(cat_photos[1])
    assert crop_for(image, DerivativeType.PROMINENT_FACE, yunet.detect(image)) is None


def test_haar_fallback_finds_a_profile_face() -> None:
    from skimage import data as skdata

    from ml_platform.vision.detectors import HaarFaceDetector

    camera = np.stack([skdata.camera()] * 3, axis=-1)  # the cameraman looks to the right
    (face,) = HaarFaceDetector().detect(camera)
    assert face.score == pytest.approx(0.9)  # found by the profile cascade
    assert 150 < (face.x0 + face.x1) / 2 < 300 and face.y1 < 260


@pytest.mark.parametrize(
    ("face", "expected"),
    [
        (Box(40, 20, 60, 40, 0.8), Box(20, 8, 80, 100, 0.4)),  # bottom clamped at 100
        (Box(0, 0, 20, 20, 1.0), Box(0, 0, 40, 100, 0.5)),  # left and top clamped
    ],
)
def test_person_box_extrapolated_from_a_face(face: Box, expected: Box) -> None:
    from ml_platform.vision.detectors.detector import person_from_face

    assert person_from_face(face, 100, 100) == expected
