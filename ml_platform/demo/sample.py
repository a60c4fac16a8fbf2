"""Build the sample crawlr snapshot from photos that scikit-image ships (no ../shared, no network).

The "pets" are sample subjects: each pet's album mixes variants (crops, flips, exposure, blur,
EXIF rotation) of two or three bundled photos, so the album has a known cluster structure.
Collections cover all three derivative types and both built-in embedding types, with positives
and explicit negatives, one collection with no focus and one naming an unknown type. Three bad
files (corrupt JPEG, not an image, decompression bomb) show that one bad image never fails a batch.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from skimage import data as skdata

SAMPLE_VERSION = "3"
EXIF_IFD, EXIF_DATETIME_ORIGINAL, EXIF_ORIENTATION = 0x8769, 0x9003, 0x0112
# pet id -> (source photo, variants)
PETS: dict[int, list[tuple[str, int]]] = {
    101: [("chelsea", 14), ("coffee", 8)],
    102: [("astronaut", 14), ("rocket", 6)],
    103: [("camera", 12), ("stereo_motorcycle", 5), ("hubble_deep_field", 5)],
}
BASE_TIME = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
# Photos with no pet: each is its own group in a dataset split, so the demo dataset's classes
# have enough groups for train, validation and test (a pet's photos never straddle splits).
STRAYS: dict[str, int] = {"chelsea": 4, "coffee": 4}
STRAY_FIRST_ID = 201
# The dataset the demo declares in <home>/datasets.yaml: label -> collection id.
DEMO_DATASET = "demo"
DEMO_CLASSES = {"cat": 1, "coffee": 4}


@dataclass(frozen=True)
class SampleImage:
    id: int
    source: str
    pet_id: int | None
    file: str


def _source(name: str) -> Image.Image:
    array = getattr(skdata, name)()
    if isinstance(array, tuple):  # stereo_motorcycle returns (left, right, disparity)
        array = array[0]
    return Image.fromarray(np.asarray(array)).convert("RGB")


PEOPLE = {"astronaut", "camera"}  # gentler variants keep their faces detectable


def _variant(img: Image.Image, rng: np.random.Generator, gentle: bool) -> Image.Image:
    w, h = img.size
    scale = rng.uniform(0.88 if gentle else 0.75, 1.0)
    cw, ch = int(w * scale), int(h * scale)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.2 and not gentle:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.0)))
    side = int(rng.integers(448, 560) if gentle else rng.integers(288, 480))
    return out.resize((side, int(side * out.height / out.width)), Image.Resampling.BICUBIC)


def _jpeg(img: Image.Image, taken: datetime, rotate_exif: bool) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if rotate_exif:  # store the pixels turned; orientation 6 tells viewers to turn them back
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[EXIF_ORIENTATION] = 6
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=88, exif=exif.tobytes())
    return buffer.getvalue()


def _bad_files() -> dict[str, bytes]:
    good = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(good, "JPEG")
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, "PNG")  # 144 Mpx in a few kB
    return {
        "corrupt.jpg": good.getvalue()[:200],
        "not-an-image.jpg": b"<html>this is not an image</html>",
        "bomb.png": bomb.getvalue(),
    }


# collection id -> (name, focus or None, positive source, explicitly rejected source)
COLLECTIONS: dict[int, tuple[str, dict[str, object] | None, str | None, str | None]] = {
    1: ("Chelsea the cat", {"id": 11, "derivative_type": {"name": "whole_image"},
        "embedding_type": {"name": "embed_clip_vit_b_32"}}, "chelsea", "coffee"),
    2: ("Astronaut portraits", {"derivative_type_name": "prominent_face",
        "embedding_type_name": "embed_dino_v2"}, "astronaut", "camera"),
    3: ("Cameraman at work", {"id": 13, "derivative_type": {"name": "prominent_person"},
        "embedding_type": {"name": "embed_clip_vit_b_32"}}, "camera", "astronaut"),
    4: ("Coffee cups", {"derivative_type_name": "whole_image",
        "embedding_type_name": "embed_dino_v2"}, "coffee", "chelsea"),
    5: ("Unreviewed uploads", None, None, None),
    6: ("SigLIP experiments", {"derivative_type_name": "whole_image",
        "embedding_type_name": "embed_siglip_so400m"}, "rocket", None),
}  # fmt: skip


def _memberships(source: str, index: int) -> tuple[list[int], list[int]]:
    members, rejected = [], []
    for cid, (_, _, positive, negative) in COLLECTIONS.items():
        if source == positive:
            members.append(cid)
        if source == negative and index % 2 == 0:  # half of them reviewed and rejected
            rejected.append(cid)
    return members, rejected


def _write_images(root: Path, rng: np.random.Generator) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    plan = [(pet, src, i) for pet, srcs in PETS.items() for src, n in srcs for i in range(n)]
    order = rng.permutation(len(plan))
    for image_id, idx in enumerate(order, start=1):
        pet, src, i = plan[idx]
        taken = BASE_TIME + timedelta(days=int(idx), hours=int(rng.integers(0, 12)))
        variant = _variant(_source(src), rng, gentle=src in PEOPLE)
        payload = _jpeg(variant, taken, rotate_exif=i == 1)
        name = f"images/{pet}/{src}-{i:02d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
        members, rejected = _memberships(src, i)
        entries.append(_entry(image_id, name, pet, taken + timedelta(hours=2), members, rejected))
    entries.extend(_write_strays(root, rng))
    for offset, (name, payload) in enumerate(_bad_files().items()):
        (root / "images" / name).write_bytes(payload)
        entries.append(_entry(900 + offset, f"images/{name}", None, BASE_TIME, [1], []))
    return entries


def _write_strays(root: Path, rng: np.random.Generator) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    plan = [(src, i) for src, n in STRAYS.items() for i in range(n)]
    for image_id, (src, i) in enumerate(plan, start=STRAY_FIRST_ID):
        taken = BASE_TIME + timedelta(days=90 + image_id - STRAY_FIRST_ID)
        name = f"images/strays/{src}-{i:02d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_jpeg(_variant(_source(src), rng, gentle=False), taken, False))
        members, rejected = _memberships(src, i)
        entries.append(_entry(image_id, name, None, taken + timedelta(hours=2), members, rejected))
    return entries


def write_demo_datasets(path: Path) -> bool:
    """Declare the demo dataset (two of the sample's collections) unless `path` exists."""
    if path.exists():
        return False
    classes = ", ".join(f"{label}: {cid}" for label, cid in DEMO_CLASSES.items())
    path.write_text(
        "# Written by `ml-platform demo`: the sample crawlr's collections as dataset classes.\n"
        f"datasets:\n  {DEMO_DATASET}:\n    classes: {{{classes}}}\n",
        encoding="utf-8",
    )
    return True


def _entry(
    image_id: int,
    url: str,
    pet: int | None,
    created: datetime,
    members: list[int],
    rejected: list[int],
) -> dict[str, object]:
    return {
        "id": image_id, "url": url, "pet_id": pet, "created_at": created.isoformat(),
        "collection_ids": members, "rejected_collection_ids": rejected,
    }  # fmt: skip


def build_sample_snapshot(root: Path) -> bool:
    """Write the sample snapshot into `root`; returns False when it was already there."""
    marker = root / "SAMPLE_VERSION"
    if marker.is_file() and marker.read_text().strip() == SAMPLE_VERSION:
        return False
    root.mkdir(parents=True, exist_ok=True)
    entries = _write_images(root, np.random.default_rng(7))
    collections = [
        {"id": cid, "name": name, "collection_focus": focus}
        for cid, (name, focus, _, _) in COLLECTIONS.items()
    ]
    (root / "collections.json").write_text("\ufeff" + json.dumps(collections, indent=1) + "\n")
    feed = {"images": entries, "next_cursor": None}
    (root / "images.json").write_text(json.dumps(feed, indent=1))
    marker.write_text(SAMPLE_VERSION)
    return True
