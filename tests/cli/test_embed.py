"""`ml-platform embed`: files and folders to one Parquet file, with the backend in the identity."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from ml_platform.cli import main

SUMMARY = re.compile(r"^embedded (\d+) images in [\d.]+ s \([\d.]+ img/s\)$")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (120 + 20 * index, 90), (40 * index, 90, 200)).save(
            folder / f"{index}.jpg"
        )
    Image.new("RGB", (64, 64), (1, 2, 3)).save(folder / "nested" / "deep.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_embed_writes_one_row_per_image_and_ends_with_the_rate(
    photos: Path,
    tmp_path: Path,
    tiny_model_dirs: dict[str, Path],
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ML_PLATFORM_DINO_MODEL", str(tiny_model_dirs["dino"]))
    out = tmp_path / "vectors.parquet"
    args = ["embed", str(photos), "--embedding-type", "embed_dino_v2", "--backend", backend]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    match = SUMMARY.match(last)
    assert match is not None, last
    assert match.group(1) == "4"
    table = pq.read_table(out).to_pylist()
    by_name = {Path(row["path"]).name: row for row in table}
    assert set(by_name) == {"0.jpg", "1.jpg", "2.jpg", "deep.png", "broken.jpg"}
    assert by_name["broken.jpg"]["status"] == "failed" and by_name["broken.jpg"]["vector"] is None
    ok = [row for row in table if row["status"] == "ok"]
    assert {len(row["vector"]) for row in ok} == {24}
    assert {row["backend"] for row in table} == {backend}
    suffix = "" if backend == "torch" else "+onnx"
    assert all(row["embedder_revision"].endswith(suffix) for row in table)
    assert {row["derivative_type"] for row in table} == {"whole_image"}


def test_embed_says_what_is_wrong_with_an_unknown_type(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.parquet"
    result = CliRunner().invoke(
        main, ["embed", str(photos), "--embedding-type", "embed_nope", "--out", str(out)]
    )
    assert result.exit_code != 0
    assert "unknown embedding type 'embed_nope'" in result.output
