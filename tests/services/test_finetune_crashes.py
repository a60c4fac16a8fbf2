"""A fine-tuning dies at each step between "MLflow run started" and "alias moved"; the next
`finetune_version` ends with exactly one model version for the decision, gated, and trains
nothing again once the version exists.

The death is an exception injected at that step into the real MLflow client (a SIGKILL leaves
the same registry state; the exception only spares a subprocess per point).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from ml_platform.cli import main
from ml_platform.learning.finetune import FinetuneConfig, ModelName
from ml_platform.model_registry.aliases import gate_decision, read_history
from ml_platform.model_registry.dataset.naming import dataset_model_name
from ml_platform.model_registry.tracking import open_client
from ml_platform.services import finetuning
from ml_platform.services.dataset_versions import DatasetVersion, make_version
from ml_platform.services.datasets import SplitFractions, parse_dataset_specs
from ml_platform.settings import Settings
from ml_platform.store.layout import Layout
from tests.finetune_home import BLUE, RED, coloured_images, tiny_vit

SPEC = parse_dataset_specs({"datasets": {"colours": {"classes": {"red": RED, "blue": BLUE}}}})
KILL_POINTS = [
    ("finetune", 1),  # the MLflow run is open, nothing trained or logged
    ("create_model_version", 1),  # the model is logged, no version
    ("set_registered_model_alias", 1),  # a version, no alias
    ("set_registered_model_tag", 1),  # challenger alias, the gate decided, no history
    ("set_registered_model_alias", 2),  # history written, champion not moved
    ("delete_registered_model_alias", 1),  # champion moved, challenger alias still there
    ("set_model_version_tag", 1),  # everything but the record that the gate ran
]


class Killed(RuntimeError):
    """Stands for the process dying at this point."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("finetune_crash_home")
    images = coloured_images(root)
    settings = Settings(home=root)
    return {
        "version": make_version(SPEC["colours"], images, {}, SplitFractions()),
        "catalog": {e.image.id: e for e in images},
        "store": Layout.for_settings(settings).images(),
        "root": root,
        "client": open_client(settings.tracking_uri),
        "artifacts": settings.mlflow_artifact_root,
        "config": FinetuneConfig(
            model_name=ModelName.VIT_BASE_PATCH16_224, epochs=3, seed=0,
            weights=str(tiny_vit(root / "vit")), allow_random_weights=True,
        ),
    }  # fmt: skip


def tune(home: dict[str, Any], version: DatasetVersion) -> finetuning.FinetuneOutcome:
    return finetuning.finetune_version(
        home["client"], version, home["catalog"], home["config"], store=home["store"],
        tolerance=0.02, provenance={}, artifact_location=home["artifacts"],
    )  # fmt: skip


def inject(monkeypatch: pytest.MonkeyPatch, method: str, on_call: int) -> None:
    owner: Any = finetuning if method == "finetune" else MlflowClient
    original, calls = getattr(owner, method), [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == on_call:
            raise Killed(f"killed at {method} call {on_call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, method, dying)


@pytest.mark.parametrize(("method", "on_call"), KILL_POINTS)
def test_a_finetuning_killed_at_any_step_recovers_to_one_gated_version(
    home: dict[str, Any], monkeypatch: pytest.MonkeyPatch, method: str, on_call: int
) -> None:
    version = replace(home["version"], dataset=f"colours{KILL_POINTS.index((method, on_call))}")
    client: MlflowClient = home["client"]
    name = dataset_model_name(version.dataset)
    with monkeypatch.context() as patch, pytest.raises(Killed):
        inject(patch, method, on_call)
        tune(home, version)
    trainings = [0]
    original = finetuning.finetune  # type: ignore[attr-defined]  # the name the service calls

    def counted(*args: Any, **kwargs: Any) -> Any:
        trainings[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(finetuning, "finetune", counted)
    outcome = tune(home, version)
    versions = client.search_model_versions(filter_string=f"name = '{name}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert trainings[0] == (1 if method in ("finetune", "create_model_version") else 0)
    assert outcome.decision.promote, outcome.decision.reason
    model = client.get_registered_model(name)
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "1"}
    assert [(e.version, e.previous) for e in read_history(model)] == [("1", None)]
    assert gate_decision(client, name, "1") == outcome.decision.reason
    again = tune(home, version)
    assert again.result is None and "was gated" in again.decision.reason and trainings[0] <= 1
    assert len(client.search_model_versions(filter_string=f"name = '{name}'")) == 1


def test_models_list_shows_dataset_models_and_versions_never_gated(
    home: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = replace(home["version"], dataset="listed")
    with monkeypatch.context() as patch, pytest.raises(Killed):
        inject(patch, "set_model_version_tag", 1)  # registered and promoted, gate not recorded
        tune(home, version)
    listed = CliRunner().invoke(main, ["models", "list", "--home", str(home["root"])])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("dataset-listed "))
    assert "never gated: v1" in row and "vit_base_patch16_224" in row
    tune(home, version)
    listed = CliRunner().invoke(main, ["models", "list", "--json", "--home", str(home["root"])])
    (entry,) = [m for m in json.loads(listed.output) if m["name"] == "dataset-listed"]
    assert entry["champion_version"] == "1" and entry["ungated_versions"] == []
