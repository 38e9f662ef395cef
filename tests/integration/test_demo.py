"""``assetwatch demo`` catches every injected fault and alerts on it, on the session broker."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest

from agents.connection import KafkaConnection
from agents.demo import DemoOptions, run_demo
from agents.settings import Settings

pytestmark = pytest.mark.integration


def test_the_demo_catches_and_alerts_on_every_injected_fault_and_says_so(
    kafka: KafkaConnection,
) -> None:
    out = io.StringIO()
    ok = run_demo(replace(Settings(), broker=kafka.bootstrap, kafka_properties=kafka.properties),
                  DemoOptions(assets=4, points=600, rate=3000), out)
    text = out.getvalue()
    assert ok, text
    lines = text.splitlines()
    for kind, asset in (("spike", "pump-2"), ("drift", "pump-3"), ("stuck", "pump-4")):
        assert f"CAUGHT  {kind} on {asset}" in text, text
        # one group per fault, opened as it starts and resolved once it is over, both printed
        # beside the anomalies, before the summary
        assert f"ALERTED {kind} on {asset}: 1 alert (opened and resolved)" in text, text
        opened = [i for i, line in enumerate(lines) if line.startswith(f"  ALERT   OPEN      {asset} ")]
        resolved = [i for i, line in enumerate(lines)
                    if line.startswith(f"  ALERT   RESOLVED  {asset} ")]
        assert opened and resolved and opened[0] < resolved[-1] < lines.index("summary"), text
    assert "MISSED" not in text and "NO ALERT" not in text and "still open" not in text
    assert "ANOMALY pump-" in text  # printed as published
    assert "readings sent           2,400" in text
    m = re.search(r"alerts opened +(\d+) +resolved (\d+) \((\d+) updates folded\)", text)
    assert m is not None, text
    assert int(m[1]) == int(m[2]) >= 3 and int(m[3]) > 0
    assert "ALERT   UPDATED" not in text  # folded, not printed
