"""A worker running the pipeline serves Prometheus metrics that agree with its own counts."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.connection import KafkaConnection
from streams.simulate import generate_fleet
from tests.integration.harness import INTERVAL_MS, START_MS, Pipeline, received, wait_for

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_move_with_the_stream_and_match_the_status_counts(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    readings = generate_fleet(["m-1", "m-2"], 60, START_MS, INTERVAL_MS, seed=2).readings
    with p.worker() as w:
        w.wait_ready(60)
        before = scrape(w.web_port)
        p.send(readings)
        p.send_raw([(b"m-1", b"not json")])
        wait_for(received(w, len(readings) + 1), 60, "all messages")
        status = wait_for(lambda: (st := w.status()) and st["counts"].get("scored", 0)
                          + st["counts"].get("warming_up", 0) == len(readings) and st,
                          30, "every point finalised")
        after = scrape(w.web_port)
    assert before.get(("assetwatch_points_received_total", ()), 0) == 0
    assert after[("assetwatch_points_received_total", ())] == len(readings)
    assert after[("assetwatch_messages_total", (("outcome", "invalid"),))] == 1
    scored = (("inference", "inf"), ("outcome", "scored"))
    assert after[("assetwatch_points_total", scored)] == status["counts"]["scored"]
    assert after[("assetwatch_batch_duration_seconds_count", ())] >= 1
