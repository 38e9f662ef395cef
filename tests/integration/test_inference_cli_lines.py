"""``assetwatch inference``: a name that is no inference gets the same one line from every verb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.connection import KafkaConnection
from tests.integration.harness import Pipeline

pytestmark = pytest.mark.integration


def test_show_and_control_verbs_say_the_same_line_for_an_unknown_inference(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path, partitions=1)
    (tmp_path / "inferences.json").write_bytes(b"[]")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agents.cli", "inference", *args, "nosuch", "--broker",
             kafka.bootstrap, "--topic-prefix", p.settings.topics.prefix],
            capture_output=True, text=True, timeout=90, check=False)

    with p.worker() as w:
        w.wait_ready(60)
        shown, paused = run("show"), run("pause")
    line = "assetwatch: rejected: no inference named 'nosuch'\n"
    assert (paused.returncode, paused.stderr) == (1, line)  # the control logic's rejection
    assert (shown.returncode, shown.stderr, shown.stdout) == (1, line, "")
