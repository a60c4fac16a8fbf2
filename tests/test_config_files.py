"""Config file errors name the file, and the line and column where the parser knows them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.config_files import ConfigFileError
from ml_platform.model_registry.legacy_manifest import read_manifest
from ml_platform.services.datasets import read_dataset_specs
from ml_platform.vision.embedders.custom_types import load_custom_types

DATASETS = "datasets.yaml"
TYPES = "embedding_types.yaml"
MANIFEST = "best_models.json"
READERS: dict[str, Callable[[Path], Any]] = {
    DATASETS: read_dataset_specs,
    TYPES: load_custom_types,
    MANIFEST: lambda path: read_manifest(path.parent),
}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (DATASETS, b"datasets:\n  breeds:\n    classes: {a: 1, b: 2\n", "line 4, column 1"),
        (TYPES, b"embedding_types:\n  x: [1,\n", "line 3, column 1"),
        (MANIFEST, b'{"1": "a.pkl",}', "line 1, column 15"),
        (DATASETS, b"datasets:\n  caf\xe9: {}\n", "line 2, column 6: not UTF-8"),
        (TYPES, b"\xff\xfe", "line 1, column 1: not UTF-8"),
        (MANIFEST, b'{"1": "\xe9.pkl"}', "line 1, column 8: not UTF-8"),
        (DATASETS, b"", "is empty"),
        (TYPES, b"  \n", "is empty"),
        (MANIFEST, b"", "is empty"),
    ],
)
def test_unreadable_config_files_name_the_file_line_and_column(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigFileError) as caught:
        READERS[name](path)
    assert str(path) in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("datasets:\n  breeds:\n    classes: {a: true, b: 2}\n", "need a crawlr collection id"),
        ("datasets:\n  breeds:\n    classes: {1: 1, b: 2}\n", "must be text"),
        ("datasets:\n  breeds:\n    classes: {null: 1, b: 2}\n", "must be text"),
        ("datasets:\n  breeds:\n    classes: {a: 1, b: 2}\n    clases: {}\n", "unknown keys"),
        ("datasets:\n  breeds:\n    classes: {a: 1, b: 2}\ndatsets: {}\n", "unknown keys"),
    ],
)
def test_datasets_file_refuses_unknown_keys_and_wrongly_typed_values(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / DATASETS
    path.write_text(content)
    with pytest.raises(ConfigFileError, match=message) as caught:
        read_dataset_specs(path)
    assert str(path) in str(caught.value)


def test_finetune_names_the_datasets_file_of_a_yaml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / DATASETS).write_text("datasets:\n  breeds: [\n")
    result = CliRunner().invoke(main, ["finetune", "--dataset", "breeds", "--home", str(tmp_path)])
    assert result.exit_code != 0
    assert f"datasets file {tmp_path / DATASETS}, line 3, column 1" in result.output
    assert "<unicode string>" not in result.output
