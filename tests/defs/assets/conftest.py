"""Fixtures of the asset tests: a real webhook receiver on 127.0.0.1 per module; helpers that
materialize one partition of a test home and read its one check."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from tests.alert_receiver import Receiver, alert_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with alert_receiver() as running:
        yield running


def materialize(home: dict[str, object], asset: dg.AssetsDefinition, partition: str) -> (
    dg.ExecuteInProcessResult
):  # fmt: skip
    result = dg.materialize([asset], partition_key=partition, instance=home["instance"],  # type: ignore[arg-type]
                            resources=home["resources"])  # type: ignore[arg-type]  # fmt: skip
    assert result.success
    return result


def only_check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == name
    return evaluation
