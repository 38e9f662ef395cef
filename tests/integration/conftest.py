"""Integration fixtures: close what a test's pipelines opened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import harness


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    yield
    while harness.OPEN:
        harness.OPEN.pop().close()
