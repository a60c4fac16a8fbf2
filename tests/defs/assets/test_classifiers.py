"""collection_classifier on a temporary instance with a real MLflow sqlite registry."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner

from ml_platform.cli import main
from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.learning.training import TrainingConfig, train_classifier
from ml_platform.model_registry.collection.lookup import get_champion, show
from ml_platform.model_registry.collection.naming import VersionTag
from ml_platform.services.promotion import run_gate
from ml_platform.services.training_data import build_training_set, load_focus, load_images
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")  # tiny checkpoint: 16-d
CATS = Collection(7, "cats", CLIP)
NO_FOCUS = Collection(8, "unreviewed", None, "no collection_focus")


def separable(start: int, n: int, rng: np.random.Generator) -> list[SyntheticImage]:
    direction = np.ones(16) / 4.0
    out = []
    for i in range(n):
        positive = i % 3 == 0
        vector = rng.standard_normal(16) + (2.5 if positive else -2.5) * direction
        out.append(SyntheticImage(start + i, vector, members=(7,) if positive else ()))
    return out


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> dict[str, object]:
    root = tmp_path_factory.mktemp("classifier_home")
    overrides = {
        "clip_model": str(tiny_model_dirs["clip"]),
        "dino_model": str(tiny_model_dirs["dino"]),
    }
    storage = StorageResource(home=str(root), overrides=overrides)
    add_batch(storage, "b1", separable(1, 36, np.random.default_rng(1)), [CLIP])
    set_collections(storage, [CATS, NO_FOCUS])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["7", "8"])
    resources = {
        "storage": storage,
        "mlflow": MlflowResource(home=str(root), overrides=overrides),
        "models": ModelsResource(home=str(root), overrides=overrides),
    }
    return {"root": root, "storage": storage, "instance": instance, "resources": resources}


def train(home: dict[str, object], partition: str) -> dg.MaterializeResult:
    result = dg.materialize(
        [collection_classifier], partition_key=partition,
        instance=home["instance"], resources=home["resources"],  # type: ignore[arg-type]
    )  # fmt: skip
    assert result.success
    return result


def client(home: dict[str, object]):  # type: ignore[no-untyped-def]
    return home["resources"]["mlflow"].client()  # type: ignore[index]


def gate_result(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "promotion_gate"
    return {"partition": evaluation.partition, "passed": evaluation.passed,
            **{k: v.value for k, v in evaluation.metadata.items()}}  # fmt: skip


def test_the_gate_is_described_and_decides_per_collection_partition() -> None:
    (spec,) = collection_classifier.check_specs
    assert spec.blocking and "Blocks promotion" in (spec.description or "")
    assert spec.partitions_def is not None


def test_first_model_becomes_champion_with_complete_tags(home: dict[str, object]) -> None:
    gate = gate_result(train(home, "7"))
    assert gate["partition"] == "7" and gate["passed"] is True and gate["promoted"] is True
    assert str(gate["decision"]).startswith("first champion")
    assert gate["champion_ap"] == "none" and 0.9 < float(gate["challenger_oof_ap"]) <= 1.0  # type: ignore[arg-type]
    champion = get_champion(client(home), 7)
    assert champion is not None and champion.version == "1"
    tags = champion.tags
    assert tags[VersionTag.DERIVATIVE_TYPE] == "whole_image"
    assert tags[VersionTag.EMBEDDING_TYPE] == "embed_clip_vit_b_32"
    assert tags[VersionTag.DIMENSIONALITY] == "16"
    assert tags[VersionTag.N_POSITIVES] == "12" and tags[VersionTag.N_NEGATIVES] == "20"  # sampled
    assert tags[VersionTag.DAGSTER_PARTITION] == "7" and tags[VersionTag.DAGSTER_RUN_ID]
    assert float(tags[VersionTag.CV_AVERAGE_PRECISION_MEAN]) > 0.9
    # MLflow shows the description first: it names the weights the embeddings came from
    described = client(home).get_model_version("crawlr-collection-7", "1").description
    assert (described or "").startswith(f"weights={tags[VersionTag.WEIGHTS]}: ")
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    record = instance.fetch_materializations(dg.AssetKey("collection_classifier"), limit=1).records[
        0
    ]
    metadata = record.asset_materialization.metadata if record.asset_materialization else {}
    assert "/#/models/crawlr-collection-7/versions/1" in str(metadata["mlflow_model_version"].value)
    assert metadata["promoted"].value is True
    assert str(metadata["decision"].value).startswith("first champion")
    # one name per AP figure: the asset shows the version's two AP tags under their names
    for tag in (VersionTag.CV_OOF_AVERAGE_PRECISION, VersionTag.CV_AVERAGE_PRECISION_MEAN):
        assert metadata[tag.value].value == round(float(tags[tag]), 4)


def test_training_the_same_data_again_makes_no_second_version(home: dict[str, object]) -> None:
    before = show(client(home), 7)
    assert before is not None
    train(home, "7")  # e.g. a second planner ran the same partition
    after = show(client(home), 7)
    assert after is not None and len(after.versions) == len(before.versions)
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    record = instance.fetch_materializations(dg.AssetKey("collection_classifier"), limit=1).records
    metadata = record[0].asset_materialization.metadata  # type: ignore[union-attr]
    assert "has this exact data" in str(metadata["reason"].value)


def test_retrain_planning_follows_labels_and_focus(home: dict[str, object]) -> None:
    from ml_platform.defs.planning import retrain_runs
    from ml_platform.services.retraining import RetrainPolicy

    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    instance: dg.DagsterInstance = home["instance"]  # type: ignore[assignment]
    policy = RetrainPolicy(min_positives=5)
    assert retrain_runs(instance, storage, policy) == []  # trained on exactly these labels
    set_collections(storage, [Collection(7, "cats", Focus(DerivativeType.WHOLE_IMAGE, "x")),
                              NO_FOCUS])  # fmt: skip
    (item,) = retrain_runs(instance, storage, policy)
    assert item.collection_id == 7 and item.reason.startswith("focus changed")
    set_collections(storage, [CATS, NO_FOCUS])


def test_collection_without_focus_is_skipped_with_its_reason(home: dict[str, object]) -> None:
    result = train(home, "8")
    gate = gate_result(result)
    assert gate["partition"] == "8" and gate["promoted"] is False
    assert str(gate["decision"]).startswith("not trained: ")
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["skipped"].value is True
    assert "no collection_focus" in str(metadata["reason"].value)
    assert get_champion(client(home), 8) is None


def test_challenger_trained_on_corrupted_labels_stays_challenger(home: dict[str, object]) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    layout = storage.layout()
    training = build_training_set(CATS, load_images(layout), load_focus(layout, CLIP),
                                  negative_sample_size=20, seed=0)  # fmt: skip
    shuffled = np.random.default_rng(3).permutation(training.y)
    worse = train_classifier(training.X, shuffled, TrainingConfig())
    from ml_platform.model_registry.collection.naming import ClassifierProvenance
    from ml_platform.model_registry.collection.register import register_classifier

    provenance = ClassifierProvenance(7, CLIP, training.embedded.embedder, "x")
    registered = register_classifier(client(home), worse, provenance)
    outcome = run_gate(client(home), registered.version, worse, training, 16, tolerance=0.02)
    assert not outcome.decision.promote and "worse" in outcome.decision.reason
    champion = get_champion(client(home), 7)
    assert champion is not None and champion.version == "1"
    assert "challenger" in show(client(home), 7).versions[-1].aliases  # type: ignore[union-attr]


def test_new_data_retrains_promotes_and_the_cli_rolls_back(home: dict[str, object]) -> None:
    storage: StorageResource = home["storage"]  # type: ignore[assignment]
    add_batch(storage, "b2", separable(100, 24, np.random.default_rng(2)), [CLIP])
    gate = gate_result(train(home, "7"))
    assert gate["partition"] == "7" and gate["champion_version"] == "1"
    assert isinstance(gate["champion_ap"], float) and isinstance(gate["challenger_oof_ap"], float)
    details = show(client(home), 7)
    assert details is not None and details.summary.champion_version == "3"
    runner, root = CliRunner(), str(home["root"])
    listed = runner.invoke(main, ["models", "list", "--json", "--home", root])
    assert listed.exit_code == 0, listed.output
    assert {m["collection_id"]: m["champion_version"] for m in json.loads(listed.output)}[7] == "3"
    rolled = runner.invoke(main, ["models", "rollback", "7", "--home", root])
    assert rolled.exit_code == 0 and "3 -> 1" in rolled.output
    again = runner.invoke(main, ["models", "rollback", "7", "--home", root])
    assert again.exit_code != 0 and "no previous champion" in again.output
    promoted = runner.invoke(main, ["models", "promote", "7", "3", "--home", root])
    assert promoted.exit_code == 0 and get_champion(client(home), 7).version == "3"  # type: ignore[union-attr]


def test_the_same_data_with_another_configuration_is_a_new_version(
    home: dict[str, object],
) -> None:  # last: it may promote a new champion
    before = show(client(home), 7)
    assert before is not None
    config = {"training": {"unlabelled": "keep"}}  # a launchpad change, same labels
    result = dg.materialize(
        [collection_classifier], partition_key="7", instance=home["instance"],  # type: ignore[arg-type]
        resources=home["resources"],  # type: ignore[arg-type]
        run_config={"ops": {"collection_classifier": {"config": config}}},
    )  # fmt: skip
    assert result.success
    after = show(client(home), 7)
    assert after is not None and len(after.versions) == len(before.versions) + 1
    newest = max(after.versions, key=lambda v: int(v.version))
    assert newest.tags[VersionTag.TRAINING_CONFIG_DIGEST] != ""
    run = client(home).get_run(newest.run_id)
    assert run.data.params["unlabelled"] == "keep" and "near_duplicate_cosine" in run.data.params
