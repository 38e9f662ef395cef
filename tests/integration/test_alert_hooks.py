"""Alerts to webhooks end to end: telemetry → a real worker → alerts → a real HTTP receiver.

The worker scores an inference whose alert configuration groups anomalies (SPEC §7) and
whose ``hooks`` name a webhook registered on the hooks topic; the receiver on 127.0.0.1
verifies every signature (tests/integration/hook_servers.py). What it receives is compared
with the alert records the engine published on the alerts topic. Waits are deadline-bounded.

The inference is declared in the worker's inferences file, as a deployment would: the
controller decides nothing until it has read the hooks topic, so the hook it names is known.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.connection import KafkaConnection
from agents.hook_store import HookStore
from agents.worker_process import WorkerProcess
from streams.alerts import AlertConfig
from streams.codec import loads
from streams.hooks import WebhookConfig
from tests.integration.harness import Pipeline, finalised, received, wait_for
from tests.integration.hook_servers import Receiver, secret_file
from tests.integration.test_hooks import counts, metrics_text, ready_with_hooks
from tests.integration.test_pipeline import fleet

pytestmark = pytest.mark.integration

SECRET = "whsec-test-0123456789abcdef"
#: the states that notify in group mode (no min_severity, no snooze: every group is announced)
NOTIFYING = ("open", "resolved")

AlertState = tuple[str, str]  # (alert id, state)


def with_alerts_and_hook(p: Pipeline, hook: str) -> None:
    """Declare the pipeline's inference with a group-mode alert configuration that notifies
    ``hook``."""
    alert = AlertConfig("high", correlation_points=3, mode="group")
    p.inference = replace(p.inference, alerts=(alert,), hooks=(hook,))
    (p.workdir / "inferences.json").write_bytes(orjson.dumps([p.inference.to_dict()]))


def register(p: Pipeline, hook: WebhookConfig) -> None:
    store = HookStore(p.kafka, p.settings)
    try:
        store.publish(hook)
    finally:
        store.close()


def alerts_counted(w: WorkerProcess) -> dict[str, int]:
    """The worker's ``assetwatch_alerts_total`` by state (alert records it published)."""
    return {s.labels["state"]: int(s.value)
            for family in text_string_to_metric_families(metrics_text(w))
            for s in family.samples if s.name == "assetwatch_alerts_total"}


def published_notifying(p: Pipeline) -> list[AlertState]:
    """(alert id, state) of every record on the alerts topic that notifies."""
    alerts = [loads(v) for _, v in p.read(p.settings.topics.alerts) if v is not None]
    return [(a["alert_id"], a["state"]) for a in alerts if a["state"] in NOTIFYING]


def delivered(receiver: Receiver) -> dict[str, AlertState]:
    """Idempotency key → (alert id, state) of every notification the receiver acted on."""
    return {key: alert_state(loads(body)) for key, body in dict(receiver.effective).items()}


def alert_state(body: dict[str, Any]) -> AlertState:
    return body["alert"]["alert_id"], body["alert"]["state"]


def test_the_engines_alerts_reach_a_signed_webhook_once_per_state(
        kafka: KafkaConnection, unique: str, tmp_path: Path) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    with_alerts_and_hook(p, "ops")
    readings = fleet().readings
    expected = p.expected_keys(readings)
    with Receiver(SECRET) as receiver:
        register(p, WebhookConfig("ops", receiver.url, secret_file(tmp_path, SECRET)))
        with p.worker() as w:
            ready_with_hooks(w, {"ops"})
            p.send(readings)
            wait_for(received(w, len(readings)), 60, "all readings received")
            p.wait_for_anomalies(expected, 30)
            wait_for(finalised(w, len(readings)), 30, "every point finalised")
            counted = alerts_counted(w)  # final: no point is left to alert on
            notifying = sum(counted.get(state, 0) for state in NOTIFYING)
            published = wait_for(lambda: (a := published_notifying(p)) and len(a) >= notifying and a,
                                 30, f"{notifying} open and resolved records on the alerts topic")
            wait_for(lambda: len(receiver.effective) >= notifying, 60, "every notification received")
            wait_for(lambda: counts(w).get("delivered") == notifying, 15, "every delivery recorded")
        requests = receiver.snapshot()
        anomalies = [loads(v) for _, v in p.read(p.settings.topics.anomalies) if v is not None]
    assert counted.get("open", 0) >= 1 and counted.get("resolved", 0) >= 1, counted
    assert len(published) == notifying and len(set(published)) == notifying
    by_key = delivered(receiver)
    assert sorted(by_key.values()) == sorted(published), "one idempotency key per (alert id, state)"
    assert len(requests) == len(by_key), "each notification delivered exactly once"
    assert all(r.signature_ok and r.status == 200 for r in requests)
    bodies = [loads(r.body) for r in requests]
    assert {b["alert"]["inference_id"] for b in bodies} == {"inf"}
    inline = [a for b in bodies for a in b["anomalies"]]
    assert inline and all(a in anomalies for a in inline), "inline anomalies are the published ones"
