"""Sender glue: what an SMTP failure means, the webhook's signed headers, and a webhook
sender against a real slow endpoint on 127.0.0.1 (tests/integration/hook_servers.py)."""

from __future__ import annotations

import asyncio
import random
import smtplib
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from agents.hooks import send_notification
from agents.hooks.email import build_message, classify_smtp_error
from agents.hooks.webhook import request_headers, send_webhook
from streams.alerts import Alert
from streams.delivery import Attempt, Delivery, RetryPolicy
from streams.hooks import EmailConfig, SecretRef, WebhookConfig
from streams.notification import decode_notification, encode_notification, idempotency_key, webhook_body
from streams.signature import verify_signature
from tests.integration.harness import wait_for
from tests.integration.hook_servers import Receiver

NOTIFICATION = decode_notification(encode_notification(
    Alert("a1", "high-vib", "line-3", ("pump-1",), 0, 0, 1, 0.9, ("vib",), "open", True), ["ops"]))


@pytest.mark.parametrize(
    ("exc", "kind", "detail"),
    [(smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), "permanent",
      "SMTP 535 5.7.8 Authentication credentials invalid"),
     (smtplib.SMTPSenderRefused(553, b"sender refused", "a@b.example"), "permanent", "SMTP 553"),
     (smtplib.SMTPDataError(451, b"try again later"), "retry", "SMTP 451 try again later"),
     (smtplib.SMTPRecipientsRefused({"x@y.example": (550, b"no such user")}), "permanent",
      "SMTP recipients refused: x@y.example (550)"),
     (smtplib.SMTPRecipientsRefused({"x@y.example": (450, b"mailbox busy")}), "retry", "refused"),
     (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), "permanent",
      "does not support"),
     (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "retry", "SMTPServerDisconnected"),
     (ConnectionRefusedError(111, "Connection refused"), "retry", "ConnectionRefusedError"),
     (TimeoutError("timed out"), "retry", "did not answer in time")],
)
def test_smtp_failures_are_permanent_only_when_retrying_cannot_help(
    exc: BaseException, kind: str, detail: str
) -> None:
    attempt = classify_smtp_error(exc)
    assert attempt.kind == kind and detail in attempt.detail


def test_webhook_headers_are_signed_over_the_exact_body() -> None:
    hook = WebhookConfig("ops", "https://x.example/in", SecretRef.of_value("k" * 20), headers={"X-Team": "a"})
    body = webhook_body(NOTIFICATION)
    headers = request_headers(hook, NOTIFICATION, body, 1_000)
    assert verify_signature(b"k" * 20, headers["X-Assetwatch-Timestamp"], body,
                            headers["X-Assetwatch-Signature"], now_ms=1_000)
    assert headers["Idempotency-Key"] == idempotency_key(NOTIFICATION, "ops")
    assert headers["X-Team"] == "a" and headers["Content-Type"] == "application/json"


def test_an_email_has_a_stable_message_id_per_notification_and_hook() -> None:
    hook = EmailConfig("mail", "smtp.example", sender="aw@example.com", to=("a@example.com",))
    first, second = build_message(hook, NOTIFICATION), build_message(hook, NOTIFICATION)
    expected = f"<{idempotency_key(NOTIFICATION, 'mail')}@assetwatch>"
    assert first["Message-ID"] == second["Message-ID"] == expected
    assert first["Subject"] == "[assetwatch] OPEN high-vib on line-3: pump-1 (severity 0.90)"


SECRET = "whsec-test-0123456789abcdef"
HOOK_TIMEOUT_S = 0.5
SERVER_DELAY_S = 5.0  # ten times the hook's timeout


async def _timed_attempts(hook: WebhookConfig, receiver: Receiver) -> list[tuple[Attempt, float]]:
    """Two attempts through one session (as the delivery agent keeps one): the first while the
    receiver answers late, the second once it answers at once; each with its duration."""
    results: list[tuple[Attempt, float]] = []
    async with aiohttp.ClientSession() as session:
        for delay in (SERVER_DELAY_S, 0.0):
            receiver.answer_after(delay)
            started = time.monotonic()
            attempt = await send_webhook(session, hook, NOTIFICATION, now_ms=time.time_ns() // 1_000_000)
            results.append((attempt, time.monotonic() - started))
    return results


def test_a_slow_webhook_is_given_up_at_its_timeout_and_delivered_once_when_fast() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_ms=100, max_delay_ms=100, jitter="none")
    key = idempotency_key(NOTIFICATION, "ops")
    with Receiver(SECRET) as receiver:
        hook = WebhookConfig("ops", receiver.url, SecretRef.of_value(SECRET), timeout_s=HOOK_TIMEOUT_S)
        (slow, slow_s), (fast, _) = asyncio.run(_timed_attempts(hook, receiver))
        wait_for(lambda: len(receiver.arrivals()) == 2, 5, "both attempts at the receiver")
        arrived, effective = receiver.arrivals(), dict(receiver.effective)

    # given up at the hook's timeout, not at the server's answer
    assert HOOK_TIMEOUT_S * 0.8 <= slow_s < HOOK_TIMEOUT_S + 1.5 < SERVER_DELAY_S
    assert slow == Attempt("retry", f"no response within {HOOK_TIMEOUT_S:g} s")
    pending = Delivery.pending(NOTIFICATION.notification_id, "ops", 0).record(
        slow, 1_000, policy, random.Random(0))
    assert (pending.outcome, pending.attempts, pending.next_attempt_ms) == ("pending", 1, 1_100)
    assert pending.last_error == slow.detail

    assert fast.kind == "delivered" and fast.detail == "HTTP 200 OK"
    assert pending.record(fast, 1_100, policy, random.Random(0)).outcome == "delivered"
    # the late request did reach the endpoint: both carry one key, which it acts on once
    assert arrived == [key, key]
    assert effective == {key: webhook_body(NOTIFICATION)}
    assert receiver.effective == effective, "the late answer, released at stop, acts no more"


async def _send_one(hook: WebhookConfig) -> Attempt:
    async with aiohttp.ClientSession() as session:
        return await send_notification(hook, NOTIFICATION, session=session,
                                       now_ms=time.time_ns() // 1_000_000)


def test_a_secret_file_is_read_at_delivery_and_signs_the_request(tmp_path: Path) -> None:
    (tmp_path / "ops-secret").write_text(SECRET + "\n")
    (tmp_path / "ops-auth").write_text("Bearer tok-from-a-file\n")
    hook = WebhookConfig("ops", "http://127.0.0.1:1/in", SecretRef.parse(f"file:{tmp_path}/ops-secret"),
                         headers={"Authorization": SecretRef.parse(f"file:{tmp_path}/ops-auth")})
    with Receiver(SECRET) as receiver:
        attempt = asyncio.run(_send_one(replace(hook, url=receiver.url)))
        arrival = wait_for(lambda: receiver.requests[:1], 5, "the delivery at the receiver")[0]
    assert attempt.kind == "delivered", attempt
    assert arrival.signature_ok and arrival.headers["Authorization"] == "Bearer tok-from-a-file"


@pytest.mark.parametrize(("ref", "reason"), [
    ("env:ASSETWATCH_TEST_UNSET_SECRET", "secret env:ASSETWATCH_TEST_UNSET_SECRET: the variable is "
                                         "not set on this worker"),
    ("file:/nonexistent/ops-secret", "secret file:/nonexistent/ops-secret: cannot read the file on "
                                     "this worker (No such file or directory)"),
])
def test_a_secret_that_cannot_be_resolved_is_a_retry_with_its_reason(ref: str, reason: str) -> None:
    hook = WebhookConfig("ops", "http://127.0.0.1:1/in", SecretRef.parse(ref))
    assert asyncio.run(_send_one(hook)) == Attempt("retry", reason)


def test_a_resolved_secret_too_short_to_sign_with_is_a_retry_that_does_not_show_it(
        tmp_path: Path) -> None:
    (tmp_path / "short").write_text("tiny-secret")
    hook = WebhookConfig("ops", "http://127.0.0.1:1/in", SecretRef.parse(f"file:{tmp_path}/short"))
    attempt = asyncio.run(_send_one(hook))
    assert attempt.kind == "retry" and "at least 16 characters" in attempt.detail
    assert "tiny-secret" not in attempt.detail
