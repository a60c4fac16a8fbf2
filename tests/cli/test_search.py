"""`ml-platform search` over a small indexed home: the service's answers, and its errors as
messages (exit code 1 or 2), never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.defs.resources import StorageResource
from tests.services.search_home import MEMBERS_OF, PER_BATCH, add_indexed_batch


@pytest.fixture
def home(tmp_path: Path) -> Path:
    storage = StorageResource(home=str(tmp_path))
    for n in range(2):
        add_indexed_batch(storage, f"b{n}", range(n * PER_BATCH + 1, (n + 1) * PER_BATCH + 1), n)
    return tmp_path


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["search", "--home", str(home), *args])
    return result.exit_code, result.output


def test_search_by_image_id_prints_json_results(home: Path) -> None:
    code, output = invoke(home, "--image-id", "4", "--limit", "5", "--pet", "1", "--json")

    assert code == 0, output
    answer = json.loads(output)
    assert answer["focus"] == "whole_image__embed_clip_vit_b_32"
    assert len(answer["results"]) == 5
    assert all(hit["image_id"] % 4 == 1 for hit in answer["results"])


def test_search_by_collection_lists_unlabelled_images_from_its_centroid(home: Path) -> None:
    code, output = invoke(
        home, "--collection", str(MEMBERS_OF), "--exclude-collection", str(MEMBERS_OF)
    )

    assert code == 0, output
    assert "'direction': 'centroid'" in output
    ranked = [line for line in output.splitlines() if ". image " in line]
    assert len(ranked) == 20
    assert all(int(line.split("image ")[1].split()[0]) % 5 > 1 for line in ranked)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "exactly one query"),
        (("--text", "a dog", "--focus", "whole_image__embed_dino_v2"), "has no text tower"),
        (("--image-id", "5000"), "no ingestion batch"),
    ],
)
def test_mistakes_are_messages(home: Path, args: tuple[str, ...], words: str) -> None:
    code, output = invoke(home, *args)

    assert code == 1 and words in output and "Traceback" not in output
