"""Pictures made from random-weight embeddings carry the label on the picture itself."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml_platform.defs.assets.cluster_pictures import RANDOM_WEIGHTS_LABEL, banner_for
from ml_platform.learning.projection import projection_png
from ml_platform.vision.contact_sheet import SheetRow, Tile, contact_sheet

BANNER_RED = (198, 40, 40)


def _red_share_of_top(png: bytes, rows: int = 20) -> float:
    """Share of the top `rows` pixel rows that are the banner's red."""
    top = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[:rows].reshape(-1, 3)
    return float(np.all(np.abs(top.astype(int) - BANNER_RED) <= 8, axis=1).mean())


def _sheet(banner: str | None) -> bytes:
    tiles = (Tile(Image.new("RGB", (40, 30), "navy"), "#1  0.90"), Tile(None, "#2  0.40"))
    return contact_sheet([SheetRow("cluster 0 (n=2)", tiles)], banner=banner)


def _projection(banner: str | None) -> bytes:
    x = np.random.default_rng(0).normal(size=(12, 8))
    return projection_png(x, np.array([0] * 6 + [1] * 6), banner=banner)


@pytest.mark.parametrize("draw", [_sheet, _projection])
def test_random_weight_pictures_carry_the_label_across_the_top(draw: object) -> None:
    assert callable(draw)
    labelled, plain = draw(banner_for("random")), draw(banner_for("pretrained"))

    assert _red_share_of_top(labelled) > 0.3
    assert _red_share_of_top(plain) == 0.0


def test_the_label_says_random_weights_and_what_that_means() -> None:
    assert banner_for("random") == RANDOM_WEIGHTS_LABEL
    assert (
        RANDOM_WEIGHTS_LABEL.startswith("random weights") and "not quality" in RANDOM_WEIGHTS_LABEL
    )
    assert banner_for("pretrained") is None


def test_a_long_label_widens_a_narrow_sheet_so_it_is_not_cut() -> None:
    sheet = Image.open(io.BytesIO(_sheet(RANDOM_WEIGHTS_LABEL)))
    assert sheet.width >= 300
