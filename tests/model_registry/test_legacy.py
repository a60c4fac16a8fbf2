"""Legacy best_models.json import (both formats) against a real MLflow store."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml_platform.model_registry import (
    LegacyImportOutcome,
    LegacyStatus,
    VersionTag,
    get_champion,
    import_legacy,
    model_name,
)
from ml_platform.model_registry.legacy_manifest import LegacyEntryError, resolve_model_file
from ml_platform.vision.embedders.identity import EmbedderIdentity
from tests.model_registry.conftest import fresh_sqlite_uri


def fitted(dim: int, seed: int, scaled: bool = False) -> object:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, dim))
    model = (
        make_pipeline(StandardScaler(), LogisticRegression()) if scaled else LogisticRegression()
    )
    return model.fit(X, (X[:, 0] > 0).astype(int))


class Collect(logging.Handler):
    """Keeps records (caplog is function-scoped; the import runs once per module)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(frozen=True)
class Imported:
    client: MlflowClient
    directory: Path
    artifacts: str
    first: dict[str, LegacyImportOutcome]
    second: dict[str, LegacyImportOutcome]
    warnings: list[str]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    uri, root = fresh_sqlite_uri(tmp_path_factory)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    directory = root / "legacy"
    directory.mkdir()
    joblib.dump(fitted(512, 0), directory / "collection_10_classifier_2023.pkl")
    joblib.dump(fitted(16, 1, scaled=True), directory / "faces_11.pkl")
    joblib.dump(fitted(16, 2), directory / "wide_12.pkl")
    joblib.dump(fitted(16, 3), directory / "other_16.pkl")
    joblib.dump(fitted(16, 4), root / "outside.pkl")
    new = {"derivative_type": "prominent_face", "embedding_type": "embed_dino_v2"}
    manifest = {
        "10": "collection_10_classifier_2023.pkl",
        "11": {"model_file": "faces_11.pkl", **new, "dimensionality": 16},
        "12": {"model_file": "wide_12.pkl", **new, "dimensionality": 32},
        "13": "../outside.pkl",
        "14": str(root / "outside.pkl"),
        "15": {
            "model_file": "faces_11.pkl",
            **new,
            "derivative_type": "tail",
            "dimensionality": 16,
        },
        "16": {"model_file": "other_16.pkl", **new, "dimensionality": 16},
        "17": {"model_file": "other_16.pkl", **new, "embedding_type": "embed_made_up",
               "dimensionality": 16},
    }  # fmt: skip
    (directory / "best_models.json").write_text(json.dumps(manifest))
    client.create_registered_model(model_name(16))
    existing = client.create_model_version(model_name(16), str(root / "elsewhere")).version
    client.set_registered_model_alias(model_name(16), "champion", existing)

    handler = Collect()
    logging.getLogger("ml_platform.model_registry").addHandler(handler)
    try:
        first = import_legacy(directory, client, artifact_location=str(root / "artifacts"))
        second = import_legacy(directory, client, artifact_location=str(root / "artifacts"))
    finally:
        logging.getLogger("ml_platform.model_registry").removeHandler(handler)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        yield Imported(
            client,
            directory,
            str(root / "artifacts"),
            {o.key: o for o in first},
            {o.key: o for o in second},
            [r.getMessage() for r in handler.records if r.levelno == logging.WARNING],
        )


def test_old_format_entry_is_imported_as_clip_whole_image_champion(imported: Imported) -> None:
    outcome = imported.first["10"]
    assert (outcome.status, outcome.champion) == (LegacyStatus.IMPORTED, True)
    champion = get_champion(imported.client, 10)
    assert champion is not None and champion.version == outcome.version
    tags = champion.tags
    assert tags[VersionTag.EMBEDDING_TYPE] == "embed_clip_vit_b_32"
    assert tags[VersionTag.DERIVATIVE_TYPE] == "whole_image"
    assert tags[VersionTag.DIMENSIONALITY] == "512"
    assert tags[VersionTag.SOURCE] == "legacy"
    assert tags[VersionTag.LEGACY_FILE] == "collection_10_classifier_2023.pkl"
    assert tags[VersionTag.WEIGHTS] == "pretrained"
    assert tags[VersionTag.EMBEDDER_ID] == "openai/clip-vit-base-patch32"
    assert tags[VersionTag.EMBEDDER_REVISION] == "unknown"
    embedder = EmbedderIdentity.from_tags(tags)  # a legacy version reads as one identity
    assert embedder == EmbedderIdentity("embed_clip_vit_b_32", "openai/clip-vit-base-patch32",
                                        "unknown")  # fmt: skip
    assert any("old format" in message for message in imported.warnings)


def test_new_format_entry_keeps_its_focus_and_serves_predictions(imported: Imported) -> None:
    champion = get_champion(imported.client, 11)
    assert champion is not None
    assert champion.tags[VersionTag.DERIVATIVE_TYPE] == "prominent_face"
    assert champion.tags[VersionTag.EMBEDDING_TYPE] == "embed_dino_v2"
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name(11)}@champion")
    out = loaded.predict(np.ones((3, 16), dtype=np.float32))
    assert out["probability"].between(0, 1).all()
    assert out["is_in_collection"].tolist() == (out["probability"] >= 0.5).tolist()


def test_width_mismatch_fails_only_that_entry(imported: Imported) -> None:
    outcome = imported.first["12"]
    assert outcome.status is LegacyStatus.FAILED
    assert "input width 16 != declared dimensionality 32" in outcome.reason
    assert get_champion(imported.client, 12) is None


@pytest.mark.parametrize(("key", "message"), [("13", "escapes"), ("14", "relative file name")])
def test_paths_leaving_the_directory_are_refused(
    imported: Imported, key: str, message: str
) -> None:
    outcome = imported.first[key]
    assert outcome.status is LegacyStatus.FAILED
    assert message in outcome.reason


def test_unknown_derivative_type_is_reported(imported: Imported) -> None:
    assert imported.first["15"].status is LegacyStatus.FAILED
    assert "unknown derivative_type 'tail'" in imported.first["15"].reason


def test_an_embedding_type_no_server_can_serve_is_refused_at_import(imported: Imported) -> None:
    outcome = imported.first["17"]
    assert outcome.status is LegacyStatus.FAILED and outcome.version is None
    assert "embedding_type 'embed_made_up' is not one this platform can serve" in outcome.reason
    assert get_champion(imported.client, 17) is None


def test_existing_champion_is_not_replaced(imported: Imported) -> None:
    outcome = imported.first["16"]
    assert (outcome.status, outcome.champion) == (LegacyStatus.IMPORTED, False)
    champion = get_champion(imported.client, 16)
    assert champion is not None and champion.version == "1"
    assert outcome.version == "2"


def test_reimport_reports_instead_of_duplicating(imported: Imported) -> None:
    statuses = {key: outcome.status for key, outcome in imported.second.items()}
    assert statuses == {
        "10": LegacyStatus.ALREADY_IMPORTED,
        "11": LegacyStatus.ALREADY_IMPORTED,
        "12": LegacyStatus.FAILED,
        "13": LegacyStatus.FAILED,
        "14": LegacyStatus.FAILED,
        "15": LegacyStatus.FAILED,
        "16": LegacyStatus.ALREADY_IMPORTED,
        "17": LegacyStatus.FAILED,
    }
    assert imported.second["10"].version == imported.first["10"].version


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.pkl").write_bytes(b"x")
    (tmp_path / "inside" / "link.pkl").symlink_to(tmp_path / "secret.pkl")
    with pytest.raises(LegacyEntryError, match="escapes"):
        resolve_model_file(tmp_path / "inside", "link.pkl")


def test_missing_manifest_is_a_clear_error(imported: Imported, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="best_models.json not found"):
        import_legacy(tmp_path, imported.client)
