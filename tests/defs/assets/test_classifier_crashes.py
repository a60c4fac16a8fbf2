"""A run of `collection_classifier` dies at each step between "MLflow run started" and "alias
moved"; the next run ends with exactly one version for the decision, gated.

The death is an exception injected into the real MLflow client at that step (a SIGKILL leaves
the same registry state; the exception only spares a subprocess per point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from mlflow import MlflowClient

from ml_platform.defs.assets.classifiers import collection_classifier
from ml_platform.defs.resources import StorageResource
from ml_platform.defs.resources.mlflow import MlflowResource
from ml_platform.defs.resources.vision_models import ModelsResource
from ml_platform.domain import Collection, DerivativeType, Focus
from ml_platform.model_registry.aliases import gate_decision, read_history
from ml_platform.model_registry.collection import register as registry
from ml_platform.model_registry.collection.lookup import show
from ml_platform.model_registry.collection.naming import model_name
from tests.synthetic_home import SyntheticImage, add_batch, set_collections

CLIP = Focus(DerivativeType.WHOLE_IMAGE, "embed_clip_vit_b_32")
# (what dies, on which call): in the order a first training decision calls them
KILL_POINTS = [
    ("log_model", 1),  # the MLflow run is open, nothing logged
    ("create_model_version", 1),  # the model is logged, no version
    ("set_registered_model_alias", 1),  # a version, no alias
    ("set_registered_model_tag", 1),  # challenger alias, the gate decided, no history
    ("set_registered_model_alias", 2),  # history written, champion not moved
    ("delete_registered_model_alias", 1),  # champion moved, challenger alias still there
    ("set_model_version_tag", 1),  # everything but the record that the gate ran
]
FIRST_ID = 40


class Killed(RuntimeError):
    """Stands for the process dying at this point."""


def members(image: int) -> tuple[int, ...]:
    return tuple(FIRST_ID + k for k in range(len(KILL_POINTS))) if image % 3 == 0 else ()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> Any:
    root = tmp_path_factory.mktemp("crash_home")
    overrides = {"clip_model": str(tiny_model_dirs["clip"])}
    storage = StorageResource(home=str(root), overrides=overrides)
    rng, direction = np.random.default_rng(3), np.ones(16) / 4.0
    images = [
        SyntheticImage(i, rng.standard_normal(16) + (2.5 if i % 3 == 0 else -2.5) * direction,
                       members=members(i))
        for i in range(1, 37)
    ]  # fmt: skip
    add_batch(storage, "b1", images, [CLIP])
    ids = [FIRST_ID + k for k in range(len(KILL_POINTS))]
    set_collections(storage, [Collection(cid, f"c{cid}", CLIP) for cid in ids])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", [str(cid) for cid in ids])
    resources = {
        "storage": storage,
        "mlflow": MlflowResource(home=str(root), overrides=overrides),
        "models": ModelsResource(home=str(root), overrides=overrides),
    }
    return instance, resources


def inject(monkeypatch: pytest.MonkeyPatch, method: str, on_call: int) -> None:
    owner: Any = registry if method == "log_model" else MlflowClient
    attribute = "_log_pyfunc" if method == "log_model" else method
    original, calls = getattr(owner, attribute), [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == on_call:
            raise Killed(f"killed at {method} call {on_call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, dying)


@pytest.mark.parametrize(("method", "on_call"), KILL_POINTS)
def test_a_run_killed_at_any_step_recovers_to_one_gated_version(
    home: Any, monkeypatch: pytest.MonkeyPatch, method: str, on_call: int
) -> None:
    instance, resources = home
    cid = FIRST_ID + KILL_POINTS.index((method, on_call))
    with monkeypatch.context() as patch:
        inject(patch, method, on_call)
        killed = dg.materialize(
            [collection_classifier], partition_key=str(cid), instance=instance,
            resources=resources, raise_on_error=False,
        )  # fmt: skip
    assert not killed.success
    rerun = dg.materialize([collection_classifier], partition_key=str(cid),
                           instance=instance, resources=resources)  # fmt: skip
    client = resources["mlflow"].client()
    details = show(client, cid)
    assert details is not None and [v.version for v in details.versions] == ["1"]
    assert details.summary.champion_version == "1" and details.summary.challenger_version is None
    assert gate_decision(client, model_name(cid), "1") is not None
    model = client.get_registered_model(model_name(cid))
    assert [(e.version, e.previous) for e in read_history(model)] == [("1", None)]
    (evaluation,) = rerun.get_asset_check_evaluations()
    assert evaluation.passed  # gated now, not "skipped: version 1 has this exact data"
    again = dg.materialize([collection_classifier], partition_key=str(cid),
                           instance=instance, resources=resources)  # fmt: skip
    (evaluation,) = again.get_asset_check_evaluations()
    reason = str(evaluation.metadata["decision"].value)
    assert "was gated" in reason and len(show(client, cid).versions) == 1  # type: ignore[union-attr]
