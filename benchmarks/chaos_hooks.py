"""Chaos: the hook endpoints down for a long while, across a worker restart.

``python -m benchmarks.chaos --scenario hooks-down [--down 600]``. A webhook endpoint (a real
HTTP server on 127.0.0.1 that verifies signatures and honours the idempotency key) and an
SMTP server (aiosmtpd) are both down — nothing listens on their ports — while a worker scores
a fleet with faults and raises alerts that notify both. Part-way through the outage the worker
is killed (kill -9) and another started. When ``down`` seconds have passed both come up, and
the run waits until every notification of the reference scoring has arrived (or the deadline:
the outage plus the retry policy's longest back-off, 10 min, plus a margin).

Counted, per notification (one alert state; its id is the same on every hook), target 0:

* **lost** — expected, never delivered (webhook: acted on by the receiver; e-mail: received);
* **spurious** — delivered, not expected;
* **duplicated** — acted on more than once: the webhook under two idempotency keys, or two
  e-mails. A webhook request repeated under the *same* key (the receiver acts once) is the
  documented at-least-once retry, counted apart.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.connection import KafkaConnection
from agents.hook_store import HookStore
from benchmarks.chaos import Rig, make_rig
from streams.codec import loads
from streams.delivery import RetryPolicy
from streams.hooks import EmailConfig, WebhookConfig
from tests.integration.hook_servers import Receiver, SmtpServer, secret_file

SECRET = "whsec-chaos-0123456789abcdef"
#: The most a delivery waits between two attempts (the retry policy's cap).
LONGEST_BACKOFF_S = RetryPolicy().max_delay_ms / 1000


@dataclass
class HookOutageResult:
    """The counts of one outage run (see the module docstring)."""

    down_s: float
    restarts: int
    readings: int
    expected: int
    webhook_lost: int
    webhook_spurious: int
    webhook_duplicated: int
    webhook_repeats_same_key: int
    email_lost: int
    email_spurious: int
    email_duplicated: int
    seconds_to_deliver_after_return: float
    seconds: float

    @property
    def clean(self) -> bool:
        return not (self.webhook_lost or self.webhook_spurious or self.webhook_duplicated
                    or self.email_lost or self.email_spurious or self.email_duplicated)

    def rows(self) -> list[tuple[str, Any, Any]]:
        return [("notifications expected (alert states)", self.expected, "—"),
                ("webhook: lost", self.webhook_lost, 0),
                ("webhook: spurious", self.webhook_spurious, 0),
                ("webhook: acted on twice (two idempotency keys)", self.webhook_duplicated, 0),
                ("webhook: requests repeated under the same key (receiver acts once)",
                 self.webhook_repeats_same_key, "—"),
                ("e-mail: lost", self.email_lost, 0),
                ("e-mail: spurious", self.email_spurious, 0),
                ("e-mail: received twice", self.email_duplicated, 0),
                ("seconds from the endpoints' return to the last delivery",
                 f"{self.seconds_to_deliver_after_return:.1f}", "—")]


def _webhook_ids(receiver: Receiver) -> Counter[str]:
    """Notification id → how many idempotency keys the receiver acted on for it."""
    return Counter(loads(body)["notification_id"] for body in dict(receiver.effective).values())


def _email_ids(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(msg["X-Assetwatch-Notification-Id"]) for _, msg in smtp.messages)


def run_hooks_down(kafka: KafkaConnection, workdir: Path, down_s: float = 600.0,
                   assets: int = 12, points: int = 300, rate: float = 300.0, seed: int = 0,
                   log: Any = print) -> HookOutageResult:
    """One outage run on ``kafka`` (see the module docstring); files under ``workdir``."""
    rig: Rig = make_rig(kafka, workdir, assets, points, seed, hooks=("ops", "mail"))
    receiver = Receiver(SECRET)  # not started: connection refused until the outage ends
    smtp = SmtpServer()
    store = HookStore(kafka, rig.settings)
    try:
        store.publish(WebhookConfig("ops", receiver.url, secret_file(workdir, SECRET)))
        store.publish(EmailConfig("mail", "127.0.0.1", port=smtp.port, tls="none",
                                  sender="assetwatch@example.com", to=("ops@example.com",)))
    finally:
        store.close()
    expected = rig.expected.notifications
    rng = random.Random(seed)
    started = time.monotonic()
    feeder = rig.start_feed(rate)
    first = rig.worker("before-restart").start()
    try:
        first.wait_ready(90)
        # a random moment in the outage's first half, once alerts are being raised
        time.sleep(rng.uniform(0.3, 0.5) * down_s)  # the chaos itself: when the crash comes
    finally:
        first.kill()
    log(f"worker killed at {time.monotonic() - started:.1f} s, endpoints still down")
    with rig.worker("after-restart") as second:
        second.wait_ready(90)
        outage_left = started + down_s - time.monotonic()
        if outage_left > 0:
            time.sleep(outage_left)  # the outage's length: the fault being injected
        with receiver, smtp:
            back = time.monotonic()
            log(f"endpoints back at {back - started:.1f} s")
            deadline = back + LONGEST_BACKOFF_S + 120
            last_change, last_seen = back, (0, 0)
            while time.monotonic() < deadline:
                got = (len(_webhook_ids(receiver)), len(_email_ids(smtp)))
                if got != last_seen:
                    last_change, last_seen = time.monotonic(), got
                if set(_webhook_ids(receiver)) >= expected and set(_email_ids(smtp)) >= expected:
                    break
                time.sleep(0.2)  # polling what the servers received, within the deadline
            # deliveries repeated after the last new one would show in the counts
            time.sleep(2.0)  # a grace period to catch duplicates, not synchronisation
            web, mail = _webhook_ids(receiver), _email_ids(smtp)
            keys = Counter(r.idempotency_key for r in receiver.snapshot() if r.status == 200)
    feeder.join(10)
    return HookOutageResult(
        down_s=down_s, restarts=1, readings=len(rig.readings), expected=len(expected),
        webhook_lost=len(expected - set(web)), webhook_spurious=len(set(web) - expected),
        webhook_duplicated=sum(n > 1 for n in web.values()),
        webhook_repeats_same_key=sum(n - 1 for n in keys.values() if n > 1),
        email_lost=len(expected - set(mail)), email_spurious=len(set(mail) - expected),
        email_duplicated=sum(n > 1 for n in mail.values()),
        seconds_to_deliver_after_return=last_change - back, seconds=time.monotonic() - started)
