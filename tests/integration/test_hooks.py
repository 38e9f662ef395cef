"""Hook deliveries end to end: notifications on the broker → a real worker → real servers.

Every endpoint is a real server on 127.0.0.1 (tests/integration/hook_servers.py); the worker
is the real CLI worker (`assetwatch worker`, which registers the delivery agent) in a child
process. Waits are deadline-bounded polls, never fixed sleeps.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agents.broker import ensure_topics
from agents.connection import KafkaConnection
from agents.hook_store import HookStore
from agents.kafka_io import make_producer, poll_values, topic_reader
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess
from streams.alerts import Alert
from streams.codec import dumps, loads
from streams.hooks import LEGACY_FORMAT, EmailConfig, HookConfig, SecretRef, WebhookConfig
from streams.notification import encode_notification, notification_id
from streams.records import Anomaly
from tests.integration.harness import commit_offsets, end_offsets, wait_for
from tests.integration.hook_servers import Receiver, SmtpServer

pytestmark = pytest.mark.integration

SECRET = "whsec-test-0123456789abcdef"
T0 = 1_767_225_600_000
PARTITIONS = 2


def alert(n: int, state: str = "open") -> Alert:
    an = Anomaly("line-3", f"pump-{n:03d}", T0 + n * 1000, "pumps", 1, 7.5, 0.93, 70, 0.3, {"vib": 0.9})
    return Alert(f"alert{n:04d}", "high-vib", "line-3", (an.asset_id,), an.ts_ms, an.ts_ms, 1, 0.93,
                 ("vib",), state, True, (an,))  # type: ignore[arg-type]


@dataclass
class Deployment:
    kafka: KafkaConnection
    settings: Settings
    workdir: Path

    def publish_hooks(self, *hooks: HookConfig) -> None:
        store = HookStore(self.kafka, self.settings)
        try:
            for h in hooks:
                store.publish(h)
        finally:
            store.close()

    def secret(self, name: str = "hook-secret", value: str = SECRET) -> SecretRef:
        """A reference to ``value`` kept in a file the worker reads (as a mounted secret)."""
        path = self.workdir / "secrets" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(value + "\n")
        return SecretRef.parse(f"file:{path}")

    def notify(self, alerts: Sequence[Alert], hooks: Sequence[str]) -> None:
        self.send_raw([(a.alert_id.encode(), encode_notification(a, hooks)) for a in alerts])

    def send_raw(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        producer = make_producer(self.kafka)
        for key, value in items:
            producer.produce(self.settings.topics.notifications, key=key, value=value)
        assert producer.flush(10) == 0

    def worker(self, name: str = "worker.log") -> WorkerProcess:
        (self.workdir / "inferences.json").write_text("[]")
        w = WorkerProcess(self.kafka, self.workdir / "inferences.json", self.workdir / "models",
                          self.settings.app_id, self.settings.topics.prefix, PARTITIONS,
                          log_path=self.workdir / name)
        return w


@pytest.fixture
def deployment(kafka: KafkaConnection, unique: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Deployment:
    # short back-off for tests; the worker child inherits the environment
    monkeypatch.setenv("ASSETWATCH_HOOK_BASE_DELAY_MS", "100")
    monkeypatch.setenv("ASSETWATCH_HOOK_MAX_DELAY_MS", "400")
    monkeypatch.setenv("ASSETWATCH_HOOK_MAX_ATTEMPTS", "4")
    settings = replace(Settings(), broker=kafka.bootstrap, kafka_properties=kafka.properties,
                       app_id=unique, topics=TopicNames(unique), partitions=PARTITIONS)
    ensure_topics(kafka, topic_specs(settings))
    return Deployment(kafka, settings, tmp_path)


def hooks_status(w: WorkerProcess) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/assetwatch/hooks/", timeout=1) as r:
            result: dict[str, Any] = loads(r.read())
            return result
    except OSError:
        return None


def metrics_text(w: WorkerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def ready_with_hooks(w: WorkerProcess, names: set[str]) -> None:
    w.wait_ready(60)
    wait_for(lambda: (st := hooks_status(w)) and st["ready"] and names <= set(st["hooks"]),
             30, f"the worker to know hooks {sorted(names)}")


def counts(w: WorkerProcess) -> dict[str, int]:
    st = hooks_status(w)
    return dict(st["counts"]) if st else {}


def test_a_signed_webhook_and_an_email_are_delivered(deployment: Deployment) -> None:
    with Receiver(SECRET) as receiver, SmtpServer() as smtp:
        deployment.publish_hooks(
            WebhookConfig("ops", receiver.url, deployment.secret(), headers={"X-Team": "line-3"}),
            EmailConfig("oncall", "127.0.0.1", port=smtp.port, tls="none",
                        sender="assetwatch@example.com", to=("a@example.com", "b@example.com")))
        with deployment.worker() as w:
            ready_with_hooks(w, {"ops", "oncall"})
            deployment.notify([alert(1)], ["ops", "oncall"])
            wait_for(lambda: receiver.effective and smtp.messages, 30, "a webhook call and an e-mail")
            wait_for(lambda: counts(w).get("delivered") == 2, 10, "both deliveries recorded")
            metrics = metrics_text(w)

    [req] = receiver.snapshot()
    assert req.signature_ok and req.status == 200
    body = loads(req.body)
    assert body["notification_id"] == notification_id(alert(1))
    assert body["alert"]["alert_id"] == "alert0001" and body["anomalies"][0]["asset_id"] == "pump-001"
    assert req.headers["X-Team"] == "line-3" and req.headers["Content-Type"] == "application/json"
    assert len(req.idempotency_key) == 32

    [(rcpt, msg)] = smtp.messages
    assert rcpt == ["a@example.com", "b@example.com"]
    assert msg["Subject"] == "[assetwatch] OPEN high-vib on line-3: pump-001 (severity 0.93)"
    assert "pump-001  severity 0.930" in msg.get_payload()

    assert 'assetwatch_hook_deliveries_total{hook="ops",outcome="delivered"} 1.0' in metrics
    assert 'assetwatch_hook_deliveries_total{hook="oncall",outcome="delivered"} 1.0' in metrics
    assert "assetwatch_hook_delivery_latency_seconds_count 2.0" in metrics
    assert SECRET not in metrics


def test_a_flaky_endpoint_gets_one_effective_delivery(deployment: Deployment) -> None:
    with Receiver(SECRET, fail_first=3) as receiver:
        deployment.publish_hooks(WebhookConfig("ops", receiver.url, deployment.secret()))
        with deployment.worker() as w:
            ready_with_hooks(w, {"ops"})
            deployment.notify([alert(2)], ["ops"])
            wait_for(lambda: receiver.effective, 30, "the delivery after three failures")
            # the same alert state published again (as after a crash of the scoring side)
            deployment.notify([alert(2)], ["ops"])
            wait_for(lambda: counts(w).get("duplicate") == 1, 15, "the re-publication recognised")
            metrics = metrics_text(w)
    reqs = receiver.snapshot()
    assert [r.status for r in reqs] == [503, 503, 503, 200]
    assert len({r.idempotency_key for r in reqs}) == 1 and all(r.signature_ok for r in reqs)
    assert len(receiver.effective) == 1
    assert 'assetwatch_hook_deliveries_total{hook="ops",outcome="retried"} 3.0' in metrics


def test_nothing_is_lost_while_the_endpoint_is_down_across_a_worker_crash(
    deployment: Deployment,
) -> None:
    receiver = Receiver(SECRET)  # not started: the endpoint is down (connection refused)
    deployment.publish_hooks(WebhookConfig("ops", receiver.url, deployment.secret()))
    sent = [alert(10), alert(11), alert(12, "resolved")]
    w = deployment.worker("first.log").start()
    try:
        ready_with_hooks(w, {"ops"})
        deployment.notify(sent, ["ops"])
        wait_for(lambda: counts(w).get("retried", 0) >= 3, 30, "failed attempts while it is down")
    finally:
        w.kill()  # a crash: nothing flushed on purpose
    with receiver:
        with deployment.worker("second.log") as w2:
            w2.wait_ready(60)
            wait_for(lambda: len(receiver.effective) == 3, 60, "every notification after the restart")
        reqs = receiver.snapshot()
    bodies = {loads(b)["notification_id"] for b in receiver.effective.values()}
    assert bodies == {notification_id(a) for a in sent}
    assert all(r.signature_ok and r.status == 200 for r in reqs)


def test_a_notification_the_groups_offset_skipped_is_still_delivered(
    deployment: Deployment,
) -> None:
    """The group's committed offset moves past two notifications no outbox took (as Faust's
    consumer can after a rebalance): the next worker reads them back and delivers them."""
    topic = deployment.settings.topics.notifications
    with Receiver(SECRET) as receiver:
        deployment.publish_hooks(WebhookConfig("ops", receiver.url, deployment.secret()))
        with deployment.worker("first.log") as w:
            ready_with_hooks(w, {"ops"})
            deployment.notify([alert(20)], ["ops"])
            wait_for(lambda: counts(w).get("delivered") == 1, 30, "the first delivery")
        skipped = [alert(21), alert(22)]
        deployment.notify(skipped, ["ops"])
        commit_offsets(deployment.kafka, deployment.settings.app_id, topic,
                       end_offsets(deployment.kafka, topic, PARTITIONS, 3))
        with deployment.worker("second.log") as w2:
            ready_with_hooks(w2, {"ops"})
            # a hole shows when the live stream goes on past it: 23 and 24 follow 22 and 21
            # on their partitions (1 and 0)
            deployment.notify([alert(23), alert(24)], ["ops"])
            wait_for(lambda: len(receiver.effective) == 5, 60, "every notification delivered")
            status = counts(w2)
    bodies = {loads(b)["notification_id"] for b in receiver.effective.values()}
    assert bodies == {notification_id(alert(n)) for n in (20, 21, 22, 23, 24)}
    assert status.get("hole_records") == len(skipped)


def test_failed_deliveries_are_dead_lettered_with_their_reason(deployment: Deployment) -> None:
    topic = deployment.settings.topics.hooks_dead_letter
    auth, secret = deployment.secret("auth", "Bearer tok-123"), deployment.secret()
    with Receiver(SECRET, fail_first=-1, fail_status=500) as broken, \
            Receiver(SECRET, fail_first=-1, fail_status=404) as gone:
        deployment.publish_hooks(
            WebhookConfig("broken", broken.url, deployment.secret(), headers={"Authorization": auth}),
            WebhookConfig("gone", gone.url, deployment.secret()))
        reader = topic_reader(deployment.kafka, topic, 1)
        try:
            with deployment.worker() as w:
                ready_with_hooks(w, {"broken", "gone"})
                deployment.notify([alert(20)], ["broken", "gone", "missing"])
                deployment.send_raw([(b"junk", b"not a notification")])
                raw: list[bytes] = []

                def four() -> bool:
                    raw.extend(v for _, v in poll_values(reader, 0.3) if v)
                    return len(raw) >= 4

                wait_for(four, 60, "four dead letters")
        finally:
            reader.close()
    records = [loads(v) for v in raw]
    by_hook = {r["hook"]: r for r in records}
    assert by_hook["broken"]["reason"].startswith("HTTP 500")
    assert by_hook["broken"]["reason"].endswith("(after 4 attempts)") and by_hook["broken"]["attempts"] == 4
    # the hook's public config: references (where the secrets are), never values
    assert by_hook["broken"]["hook_config"]["headers"] == {"Authorization": str(auth)}
    assert by_hook["broken"]["hook_config"]["secret"] == str(secret)
    assert by_hook["broken"]["notification"]["notification_id"] == notification_id(alert(20))
    assert by_hook["gone"]["reason"].startswith("HTTP 404") and by_hook["gone"]["attempts"] == 1
    assert by_hook["missing"]["reason"] == "no hook named 'missing' (after 4 attempts)"
    assert by_hook["missing"]["hook_config"] is None
    assert by_hook[None]["reason"].startswith("not a notification record: not JSON")
    assert len(broken.snapshot()) == 4 and len(gone.snapshot()) == 1
    assert not any(SECRET.encode() in r or b"tok-123" in r for r in raw)


def raw_hook_records(deployment: Deployment) -> list[bytes]:
    """Every byte of the hooks topic (keys and values), read with a plain consumer."""
    reader = topic_reader(deployment.kafka, deployment.settings.topics.hooks, 1)
    try:
        out: list[bytes] = []
        wait_for(lambda: out.extend(b for kv in poll_values(reader, 0.3) for b in kv if b) or out,
                 20, "the hooks topic's records")
        return out
    finally:
        reader.close()


def test_hook_secrets_are_references_on_the_topic_and_resolved_by_the_worker_to_sign(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    # the signing secret in the worker's environment, the Authorization header in a file
    monkeypatch.setenv("AW_TEST_OPS_SECRET", SECRET)
    auth = deployment.secret("ops-auth", "Bearer tok-from-a-file-42")
    with Receiver(SECRET) as receiver:
        deployment.publish_hooks(WebhookConfig("ops", receiver.url, SecretRef.parse("env:AW_TEST_OPS_SECRET"),
                                               headers={"Authorization": auth}))
        raw = raw_hook_records(deployment)
        with deployment.worker() as w:
            ready_with_hooks(w, {"ops"})
            deployment.notify([alert(30)], ["ops"])
            wait_for(lambda: receiver.effective, 30, "the signed delivery")
            status = hooks_status(w)
        [req] = receiver.snapshot()
    assert b"env:AW_TEST_OPS_SECRET" in b"".join(raw) and str(auth).encode() in b"".join(raw)
    assert not any(SECRET.encode() in r or b"tok-from-a-file-42" in r for r in raw)
    assert req.signature_ok and req.status == 200  # signed with the value the worker resolved
    assert req.headers["Authorization"] == "Bearer tok-from-a-file-42"
    assert status is not None and SECRET not in str(status) and "tok-from-a-file" not in str(status)


def test_a_hook_of_the_first_format_with_its_secret_in_clear_is_still_delivered(
        deployment: Deployment) -> None:
    with Receiver(SECRET) as receiver:
        producer = make_producer(deployment.kafka)
        producer.produce(deployment.settings.topics.hooks, key=b"old", value=dumps(
            {"format": LEGACY_FORMAT, "kind": "webhook", "name": "old", "url": receiver.url,
             "secret": SECRET, "headers": {}, "timeout_s": 10.0}))
        assert producer.flush(10) == 0
        with deployment.worker() as w:
            ready_with_hooks(w, {"old"})
            deployment.notify([alert(31)], ["old"])
            wait_for(lambda: receiver.effective, 30, "the delivery through the legacy hook")
        [req] = receiver.snapshot()
    assert req.signature_ok and req.status == 200
