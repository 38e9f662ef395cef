"""``assetwatch demo`` catches every injected fault, on the session broker."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from agents.demo import DemoOptions, run_demo
from agents.settings import Settings

pytestmark = pytest.mark.integration


def test_the_demo_catches_every_injected_fault_and_says_so(kafka_bootstrap: str) -> None:
    out = io.StringIO()
    caught_all = run_demo(replace(Settings(), broker=kafka_bootstrap),
                          DemoOptions(assets=4, points=600, rate=3000), out)
    text = out.getvalue()
    assert caught_all, text
    for kind in ("spike", "drift", "stuck"):
        assert f"CAUGHT  {kind}" in text
    assert "MISSED" not in text
    assert "ANOMALY pump-" in text  # printed as published
    assert "readings sent           2,400" in text
