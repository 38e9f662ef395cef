"""Every PromQL expression of every Grafana dashboard returns data from a real Prometheus that
scrapes a real worker (on the session broker, telemetry flowing, anomalies published, their
alerts delivered through real webhooks on 127.0.0.1: one flaky, one down)."""

from __future__ import annotations

import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.connection import KafkaConnection
from agents.hook_store import HookStore
from agents.worker_process import WorkerProcess
from streams.alerts import AlertConfig
from streams.hooks import WebhookConfig
from streams.simulate import Fault, generate_fleet
from tests.deploy.conftest import DEPLOY, Prometheus, scrape_config_for
from tests.integration.harness import INTERVAL_MS, Pipeline, received, wait_for
from tests.integration.hook_servers import Receiver, secret_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
#: what Grafana puts in place of its variables: a window covering the whole test, the test's
#: inference
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "5m", "$__range": "5m",
                 "$inference": "inf"}
SECRET = "whsec-test-0123456789abcdef"
#: the webhooks the test's inference notifies: ``ops`` fails its first request, then answers;
#: ``down`` always fails, so each of its deliveries is retried once, then dead (2 attempts)
HOOKS = ("ops", "down")
#: alert states that notify in group mode (no min_severity, no snooze)
NOTIFYING = ("open", "resolved")


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


@dataclass
class Scraped:
    """The Prometheus scraping the worker, and what the worker's webhooks received."""

    prom: Prometheus
    ops: Receiver
    down: Receiver
    notified: int  # notifications the worker's alerts made (each to both hooks)


def hooks_status(w: WorkerProcess) -> dict[str, Any] | None:
    """The worker's ``/assetwatch/hooks/`` page, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/assetwatch/hooks/", timeout=1) as r:
            result: dict[str, Any] = orjson.loads(r.read())
            return result
    except OSError:
        return None


def alerts_counted(w: WorkerProcess) -> dict[str, int]:
    """The worker's own ``assetwatch_alerts_total`` by state (alert records it published)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {s.labels["state"]: int(s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "assetwatch_alerts_total"}


def with_alerts_and_hooks(p: Pipeline, ops: Receiver, down: Receiver) -> None:
    """Register both webhooks on the hooks topic and declare the inference with a group-mode
    alert configuration notifying them (before the worker starts, as a deployment would)."""
    store = HookStore(p.kafka, p.settings)
    try:
        for name, receiver in zip(HOOKS, (ops, down), strict=True):
            store.publish(WebhookConfig(name, receiver.url, secret_file(p.workdir, SECRET)))
    finally:
        store.close()
    p.inference = replace(p.inference, alerts=(AlertConfig("spikes", correlation_points=3),),
                          hooks=HOOKS)
    (p.workdir / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))


@pytest.fixture
def scraped_pipeline(
    kafka: KafkaConnection, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    start_prometheus: Callable[[dict[str, Any]], Prometheus],
) -> Iterator[Scraped]:
    """A worker that scored recent readings with a fault in them and delivered the alerts'
    notifications through webhooks, scraped every second."""
    # quick retries, and a delivery dead after its second attempt; the worker inherits these
    monkeypatch.setenv("ASSETWATCH_HOOK_BASE_DELAY_MS", "100")
    monkeypatch.setenv("ASSETWATCH_HOOK_MAX_DELAY_MS", "400")
    monkeypatch.setenv("ASSETWATCH_HOOK_MAX_ATTEMPTS", "2")
    p = Pipeline.create(kafka, unique, tmp_path)
    start_ms = time.time_ns() // 1_000_000 - 120 * INTERVAL_MS  # recent: realistic latencies
    fleet = generate_fleet(["m-1", "m-2"], 90, start_ms, INTERVAL_MS, seed=2,
                           faults=[Fault("m-2", "spike", 60, 3)])
    with Receiver(SECRET, fail_first=1) as ops, Receiver(SECRET, fail_first=-1) as down:
        with_alerts_and_hooks(p, ops, down)
        with p.worker() as w:
            w.wait_ready(60)
            wait_for(lambda: (st := hooks_status(w)) and st["ready"] and set(HOOKS) <= set(st["hooks"]),
                     30, f"the worker to know hooks {HOOKS}")
            prom = start_prometheus(scrape_config_for([f"127.0.0.1:{w.web_port}"]))
            prom.wait_for("the worker scraped", lambda: prom.query('up{job="assetwatch-workers"} == 1'))
            p.send(fleet.readings)
            p.send_raw([(b"m-1", b"not json")])
            wait_for(received(w, len(fleet.readings) + 1), 60, "every message received")
            status = wait_for(lambda: (st := w.status()) and st["counts"].get("anomalies", 0) > 0
                              and st["counts"].get("scored", 0) + st["counts"].get("warming_up", 0)
                              == len(fleet.readings) and st, 30, "every point finalised, anomalies")
            anomalies = status["counts"]["anomalies"]
            counted = alerts_counted(w)  # final: no point is left to alert on
            notified = sum(counted.get(state, 0) for state in NOTIFYING)
            assert counted.get("open", 0) >= 1, counted
            wait_for(lambda: (c := (hooks_status(w) or {}).get("counts", {}))
                     and c.get("delivered", 0) >= notified and c.get("dead", 0) >= notified,
                     30, f"{notified} notifications delivered through ops and dead through down")
            prom.wait_for(f"{anomalies} anomalies scraped", lambda: prom.query(
                f'sum(assetwatch_anomalies_total{{inference="inf"}}) >= {anomalies}'))
            prom.wait_for("consumer lag scraped", lambda: prom.query("assetwatch_consumer_lag_messages"))
            prom.wait_for(f"{notified} deliveries and {notified} dead scraped", lambda: prom.query(
                f'sum(assetwatch_hook_deliveries_total{{outcome="delivered"}}) >= {notified} and '
                f'sum(assetwatch_hook_deliveries_total{{outcome="dead"}}) >= {notified}'))
            prom.wait_for("no delivery pending", lambda: prom.query(
                "sum(assetwatch_hook_deliveries_pending) == 0"))
            # a labelled series is born at its first increment: rate() needs a second sample
            prom.wait_for("two samples of every delivery series", lambda: prom.query(
                "min(count_over_time(assetwatch_hook_deliveries_total[5m])) >= 2"))
            yield Scraped(prom, ops, down, notified)


def test_every_dashboard_expression_returns_data_from_a_scraped_worker(scraped_pipeline: Scraped) -> None:
    prom = scraped_pipeline.prom
    exprs = expressions()
    assert len(DASHBOARDS) >= 2 and len(exprs) >= 20
    empty = [(name, title, expr) for name, title, expr in exprs if not has_data(prom.query(expr))]
    assert empty == [], "dashboard expressions without data:\n" + "\n".join(map(str, empty))
    for metric, label in template_queries():
        series = prom.api("/api/v1/series", **{"match[]": metric})
        assert "inf" in {s.get(label) for s in series}, (metric, label)
    # and the numbers mean what the panels say
    dead = prom.query('assetwatch_messages_total{outcome="invalid"}')
    assert [float(s["value"][1]) for s in dead] == [1.0]
    status = prom.query("assetwatch_inference_status == 1")
    assert [(s["metric"]["inference"], s["metric"]["status"]) for s in status] == [("inf", "Active")]
    due_p99 = prom.query(
        "histogram_quantile(0.99, sum by (le) (rate(assetwatch_due_to_published_seconds_bucket[5m])))")
    assert 0 <= float(due_p99[0]["value"][1]) < 5, due_p99
    lag = prom.query("max by (inference) (assetwatch_watermark_lag_seconds)")
    assert 0 < float(lag[0]["value"][1]) < 600, lag  # the readings are two minutes old
    # the dashboards name only metrics the worker exposes (no typo hides behind another panel)
    exposed = set(prom.api("/api/v1/label/__name__/values"))
    used = {name for _, _, expr in expressions()
            for name in re.findall(r"\b(assetwatch_\w+)", expr)}
    assert used, "dashboards name no assetwatch metric"
    assert used <= exposed, f"not exposed: {sorted(used - exposed)}"
    # hook deliveries, on the same worker and Prometheus (starting them is most of the time)
    check_hook_deliveries(scraped_pipeline)


def check_hook_deliveries(scraped_pipeline: Scraped) -> None:
    """The hook metrics scraped are the requests the webhooks answered."""
    prom, n = scraped_pipeline.prom, scraped_pipeline.notified
    ops, down = scraped_pipeline.ops.snapshot(), scraped_pipeline.down.snapshot()
    assert all(r.signature_ok for r in ops + down)
    # ops: its first request failed (retried), then every notification answered once
    assert [r.status for r in ops] == [503] + [200] * n, [r.status for r in ops]
    assert len(scraped_pipeline.ops.effective) == n
    # down: every notification tried twice (retried, then dead)
    assert [r.status for r in down] == [503] * 2 * n, [r.status for r in down]
    scraped = {(s["metric"]["hook"], s["metric"]["outcome"]): float(s["value"][1])
               for s in prom.query("sum by (hook, outcome) (assetwatch_hook_deliveries_total)")}
    # every outcome of a hook in use is a series from zero (so rate() sees its first increment)
    assert {k: v for k, v in scraped.items() if v} == {
        ("ops", "retried"): 1, ("ops", "delivered"): n, ("down", "retried"): n, ("down", "dead"): n}
    assert set(scraped) == {(h, o) for h in ("ops", "down") for o in ("delivered", "retried", "dead")}
    delivered = prom.query("sum(assetwatch_hook_delivery_latency_seconds_count)")
    assert [float(s["value"][1]) for s in delivered] == [n]
    p99 = prom.query("histogram_quantile(0.99, sum by (le) "
                     "(rate(assetwatch_hook_delivery_latency_seconds_bucket[5m])))")
    assert 0 < float(p99[0]["value"][1]) < 30, p99
    pending = prom.query("sum(assetwatch_hook_deliveries_pending)")
    assert [float(s["value"][1]) for s in pending] == [0.0]
    invalid = prom.query("sum(assetwatch_hook_notifications_invalid_total)")
    assert [float(s["value"][1]) for s in invalid] == [0.0]
