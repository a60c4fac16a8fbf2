"""The dataset classifiers' promotion gate: accuracy on the same test images, sanity first."""

from __future__ import annotations

import pytest
import torch

from ml_platform.model_registry.dataset.gate import accuracy_decision, sanity_problems


@pytest.mark.parametrize(
    ("champion", "challenger", "promote", "why"),
    [
        (None, 0.7, True, "no comparable champion"),
        (0.80, 0.78, True, "not worse"),  # exactly at the tolerance
        (0.80, 0.70, False, "worse"),
        (0.60, 0.90, True, "not worse"),
    ],
)
def test_accuracy_decision(
    champion: float | None, challenger: float, promote: bool, why: str
) -> None:
    decision = accuracy_decision(champion, challenger, 20, 0.02, [])
    assert decision.promote is promote and why in decision.reason


def test_sanity_problems_block_promotion() -> None:
    state = {"head.weight": torch.tensor([[float("nan"), 1.0]])}
    problems = sanity_problems(state, ["a", "b"], ["a", "c"], 10, 0.4)
    assert any("non-finite" in p for p in problems) and any("class names" in p for p in problems)
    assert any("not above chance" in p for p in problems)
    decision = accuracy_decision(None, 0.99, 10, 0.02, problems)
    assert not decision.promote and "sanity" in decision.reason
