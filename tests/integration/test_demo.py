"""``assetwatch demo`` catches every injected fault and alerts on it, on the session broker."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

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


def test_the_demo_command_leaves_nothing_in_the_temporary_directory(
    kafka: KafkaConnection, tmp_path: Path,
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETWATCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "demo", "--broker", kafka.bootstrap,
         "--points", "300", "--rate", "3000"],
        env={**env, **kafka.env(), "TMPDIR": str(tmp)}, capture_output=True, text=True,
        timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary" in done.stdout
    assert sorted(p.name for p in tmp.iterdir()) == []  # the worker's and the demo's own, gone
