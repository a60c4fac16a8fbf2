"""Fixtures of the asset tests: a real webhook receiver on 127.0.0.1 per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alert_receiver import Receiver, alert_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with alert_receiver() as running:
        yield running
