"""Every PromQL expression of every Grafana dashboard returns data from a real Prometheus that
scrapes a real worker (on the session broker, telemetry flowing, anomalies published)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.simulate import Fault, generate_fleet
from tests.deploy.conftest import DEPLOY, Prometheus, scrape_config_for
from tests.integration.harness import INTERVAL_MS, Pipeline, received, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
#: what Grafana puts in place of its variables: a window covering the whole test, the test's
#: inference
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "5m", "$__range": "5m",
                 "$inference": "inf"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # rows hold panels


def expressions() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with variables substituted) of every target."""
    found = []
    for path in DASHBOARDS:
        dashboard = orjson.loads(path.read_bytes())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for var, value in SUBSTITUTIONS.items():
                    expr = expr.replace(var, value)
                assert "$" not in expr, f"unsubstituted variable in {path.name}: {expr}"
                found.append((path.name, panel["title"], expr))
    return found


def template_queries() -> list[tuple[str, str]]:
    """(metric, label) of every ``label_values(metric, label)`` template variable."""
    out = []
    for path in DASHBOARDS:
        for var in orjson.loads(path.read_bytes()).get("templating", {}).get("list", []):
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
            assert m, f"{path.name}: template variable {var['name']} is not label_values(): {query}"
            out.append((m[1], m[2]))
    return out


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series, and at least one of their values a number (not NaN)."""
    values = [float(s["value"][1]) for s in result]
    return bool(values) and any(not math.isnan(v) for v in values)


@pytest.fixture
def scraped_pipeline(
    kafka_bootstrap: str, unique: str, tmp_path: Path,
    start_prometheus: Callable[[dict[str, Any]], Prometheus],
) -> Iterator[Prometheus]:
    """A worker that scored recent readings with a fault in them, scraped every second."""
    p = Pipeline.create(kafka_bootstrap, unique, tmp_path)
    start_ms = time.time_ns() // 1_000_000 - 120 * INTERVAL_MS  # recent: realistic latencies
    fleet = generate_fleet(["m-1", "m-2"], 90, start_ms, INTERVAL_MS, seed=2,
                           faults=[Fault("m-2", "spike", 60, 3)])
    with p.worker() as w:
        w.wait_ready(60)
        prom = start_prometheus(scrape_config_for([f"127.0.0.1:{w.web_port}"]))
        prom.wait_for("the worker scraped", lambda: prom.query('up{job="assetwatch-workers"} == 1'))
        p.send(fleet.readings)
        p.send_raw([(b"m-1", b"not json")])
        wait_for(received(w, len(fleet.readings) + 1), 60, "every message received")
        status = wait_for(lambda: (st := w.status()) and st["counts"].get("anomalies", 0) > 0
                          and st["counts"].get("scored", 0) + st["counts"].get("warming_up", 0)
                          == len(fleet.readings) and st, 30, "every point finalised, anomalies")
        anomalies = status["counts"]["anomalies"]
        prom.wait_for(f"{anomalies} anomalies scraped", lambda: prom.query(
            f'sum(assetwatch_anomalies_total{{inference="inf"}}) >= {anomalies}'))
        prom.wait_for("consumer lag scraped", lambda: prom.query("assetwatch_consumer_lag_messages"))
        yield prom


def test_every_dashboard_expression_returns_data_from_a_scraped_worker(scraped_pipeline: Prometheus) -> None:
    exprs = expressions()
    assert len(DASHBOARDS) >= 2 and len(exprs) >= 20
    empty = [(name, title, expr) for name, title, expr in exprs
             if not has_data(scraped_pipeline.query(expr))]
    assert empty == [], "dashboard expressions without data:\n" + "\n".join(map(str, empty))
    for metric, label in template_queries():
        series = scraped_pipeline.api("/api/v1/series", **{"match[]": metric})
        assert "inf" in {s.get(label) for s in series}, (metric, label)
    # and the numbers mean what the panels say
    dead = scraped_pipeline.query('assetwatch_messages_total{outcome="invalid"}')
    assert [float(s["value"][1]) for s in dead] == [1.0]
    status = scraped_pipeline.query("assetwatch_inference_status == 1")
    assert [(s["metric"]["inference"], s["metric"]["status"]) for s in status] == [("inf", "Active")]
    due_p99 = scraped_pipeline.query(
        "histogram_quantile(0.99, sum by (le) (rate(assetwatch_due_to_published_seconds_bucket[5m])))")
    assert 0 <= float(due_p99[0]["value"][1]) < 5, due_p99
    lag = scraped_pipeline.query("max by (inference) (assetwatch_watermark_lag_seconds)")
    assert 0 < float(lag[0]["value"][1]) < 600, lag  # the readings are two minutes old
    # the dashboards name only metrics the worker exposes (no typo hides behind another panel)
    exposed = set(scraped_pipeline.api("/api/v1/label/__name__/values"))
    used = {name for _, _, expr in expressions()
            for name in re.findall(r"\b(assetwatch_\w+)", expr)}
    assert used, "dashboards name no assetwatch metric"
    assert used <= exposed, f"not exposed: {sorted(used - exposed)}"
