"""collection_scores and the curation answers (routes, CLI) on a home trained for real:
a temporary Dagster instance, a real MLflow sqlite registry, synthetic 16-d embeddings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ml_platform.cli import main
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.assets.scores import collection_scores
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.serving.app import create_app
from ml_platform.serving.options import ServeOptions
from ml_platform.settings import Settings
from ml_platform.store.curation_tables import read_out_of_fold, scored_batches
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
DOGS = Collection(5, "dogs", CLIP)
UNTRAINED = Collection(6, "birds", CLIP)
DIRECTION = np.ones(16) / 4.0
WRONG_MEMBER, WRONG_REJECTION, LOOKALIKE, ITS_COPY = 100, 101, 200, 201


def _vector(rng: np.random.Generator, positive: bool) -> np.ndarray:
    return rng.standard_normal(16) * 0.7 + (3.0 if positive else -3.0) * DIRECTION


def first_batch(rng: np.random.Generator) -> list[SyntheticImage]:
    """18 members, 18 rejections, 12 unlabelled negatives, a planted wrong member and wrong
    rejection, and an unlabelled look-alike of the members with a near-copy of it."""
    out = [SyntheticImage(i, _vector(rng, True), members=(5,)) for i in range(1, 19)]
    out += [SyntheticImage(i, _vector(rng, False), rejected=(5,)) for i in range(19, 37)]
    out += [SyntheticImage(i, _vector(rng, False)) for i in range(37, 49)]
    out += [
        SyntheticImage(WRONG_MEMBER, _vector(rng, False), members=(5,)),
        SyntheticImage(WRONG_REJECTION, _vector(rng, True) + 2 * DIRECTION, rejected=(5,)),
    ]
    lookalike = _vector(rng, True) + 2 * DIRECTION
    out += [SyntheticImage(LOOKALIKE, lookalike), SyntheticImage(ITS_COPY, lookalike * 1.01)]
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> dict:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("scores_home")
    overrides = {
        "clip_model": str(tiny_model_dirs["clip"]),
        "dino_model": str(tiny_model_dirs["dino"]),
    }
    storage = StorageResource(home=str(root), overrides=overrides)
    add_batch(storage, "b1", first_batch(np.random.default_rng(3)), [CLIP])
    set_collections(storage, [DOGS, UNTRAINED])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["5", "6"])
    resources = {
        "storage": storage,
        "mlflow": MlflowResource(home=str(root), overrides=overrides),
        "models": ModelsResource(home=str(root), overrides=overrides),
    }
    home = {"root": root, "storage": storage, "instance": instance, "resources": resources,
            "overrides": overrides}  # fmt: skip
    run(home, [collection_classifier, collection_scores])
    return home


def run(
    home: dict, assets: list[dg.AssetsDefinition], partition: str = "5"
) -> dg.ExecuteInProcessResult:  # type: ignore[type-arg]
    result = dg.materialize(
        assets, partition_key=partition, instance=home["instance"], resources=home["resources"]
    )
    assert result.success
    return result


def latest_scores_metadata(home: dict) -> dict[str, object]:  # type: ignore[type-arg]
    instance: dg.DagsterInstance = home["instance"]
    record = instance.fetch_materializations(dg.AssetKey("collection_scores"), limit=1).records[0]
    assert record.asset_materialization is not None
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def api(home: dict, **overrides: object) -> TestClient:  # type: ignore[type-arg]
    fields = {"home": home["root"], "allow_random_weights": True, **home["overrides"], **overrides}
    settings = Settings(**fields)
    return TestClient(create_app(settings, ServeOptions(refresh_interval_s=0.0)))


def test_training_keeps_the_winner_out_of_fold_probabilities_with_its_version(home: dict) -> None:  # type: ignore[type-arg]
    oof = read_out_of_fold(home["storage"].layout(), 5, "1")
    assert WRONG_MEMBER in oof.image_ids.tolist() and oof.unlabelled.any()
    assert ((oof.probabilities >= 0) & (oof.probabilities <= 1)).all()
    row = oof.image_ids.tolist().index(WRONG_MEMBER)
    assert oof.labels[row] == 1 and oof.probabilities[row] < 0.5  # its fold did not see it


def test_scores_each_batch_once_per_champion_version(home: dict) -> None:  # type: ignore[type-arg]
    first = latest_scores_metadata(home)
    assert first["model_version"] == "1" and first["images_scored"] == 52
    assert "suggestions" in first  # the contact sheet of the top suggestions
    run(home, [collection_scores])
    assert latest_scores_metadata(home)["images_scored"] == 0  # nothing new to score
    rng = np.random.default_rng(9)
    add_batch(
        home["storage"],
        "b2",
        [SyntheticImage(300 + i, _vector(rng, False)) for i in range(4)],
        [CLIP],
    )
    run(home, [collection_scores])
    assert latest_scores_metadata(home)["images_scored"] == 4  # only the new batch
    assert scored_batches(home["storage"].layout(), 5, "1") == {"b1", "b2"}


def test_label_audit_check_warns_about_the_planted_labels(home: dict) -> None:  # type: ignore[type-arg]
    result = run(home, [collection_scores])
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "label_audit" and check.passed is False
    assert check.metadata["likely_not_member"].value >= 1
    assert collection_scores.check_specs and not next(iter(collection_scores.check_specs)).blocking


def test_routes_answer_with_the_issue_shapes(home: dict) -> None:  # type: ignore[type-arg]
    with api(home) as client:
        found = client.get("/v1/collections/5/suggestions", params={"limit": 3}).json()
        assert found["collection_id"] == 5 and found["model_version"] == "1"
        ids = [s["image_id"] for s in found["suggestions"]]
        assert ids[0] == LOOKALIKE and ITS_COPY not in ids  # the copy is collapsed into it
        assert set(found["suggestions"][0]) == {"image_id", "probability"}
        issues = client.get("/v1/collections/5/label-issues").json()["issues"]
        kinds = {(i["image_id"], i["kind"]) for i in issues}
        assert {(WRONG_MEMBER, "likely_not_member"), (WRONG_REJECTION, "likely_member")} <= kinds
        assert {i["tier"] for i in issues} <= {"likely", "suspected"}
        queue = client.get("/v1/collections/5/review-queue", params={"limit": 6}).json()["queue"]
        assert len(queue) == 6 and queue[0]["reason"] == "label_issue"
        assert [e["reason"] for e in queue[1:3]] == ["probable_member", "uncertain"]
        assert queue[1]["image_id"] == LOOKALIKE  # the most probable unlabelled image


@pytest.mark.parametrize(
    ("path", "status", "sentence"),
    [
        ("/v1/collections/99/suggestions", 404, "not among the 2 collections"),
        ("/v1/collections/6/label-issues", 404, "has no champion classifier yet"),
        ("/v1/collections/5/review-queue?limit=0", 422, "limit"),
        ("/v1/collections/5/suggestions?min_probability=2", 422, "min_probability"),
    ],
)
def test_routes_refuse_bad_requests_with_a_sentence(
    home: dict, path: str, status: int, sentence: str
) -> None:  # type: ignore[type-arg]
    with api(home) as client:
        reply = client.get(path)
    assert reply.status_code == status and sentence in str(reply.json())


def test_curation_routes_sit_behind_the_token(home: dict) -> None:  # type: ignore[type-arg]
    with api(home, serve_token="s3cret") as client:
        refused = client.get("/v1/collections/5/label-issues")
        allowed = client.get(
            "/v1/collections/5/label-issues", headers={"Authorization": "Bearer s3cret"}
        )
    assert refused.status_code == 401 and allowed.status_code == 200


def test_cli_commands_call_the_same_services(home: dict) -> None:  # type: ignore[type-arg]
    runner = CliRunner()
    home_arg = ["--home", str(home["root"])]
    suggested = runner.invoke(main, ["suggest", "5", "--limit", "2", "--json", *home_arg])
    assert suggested.exit_code == 0, suggested.output
    assert '"image_id": 200' in suggested.output
    audited = runner.invoke(main, ["audit", "5", *home_arg])
    assert audited.exit_code == 0 and f"image {WRONG_MEMBER}: likely_not_member, " in audited.output
    as_json = runner.invoke(main, ["audit", "5", "--json", *home_arg])
    assert as_json.exit_code == 0 and '"tier": ' in as_json.output
    queued = runner.invoke(main, ["review-queue", "5", *home_arg])
    assert queued.exit_code == 0 and "label_issue" in queued.output
    unknown = runner.invoke(main, ["audit", "6", *home_arg])
    assert unknown.exit_code == 1 and "no champion classifier yet" in unknown.output
