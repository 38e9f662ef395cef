"""Sender glue without servers: what an SMTP failure means, the webhook's signed headers."""

from __future__ import annotations

import smtplib

import pytest

from agents.hooks.email import build_message, classify_smtp_error
from agents.hooks.webhook import request_headers
from streams.alerts import Alert
from streams.hooks import EmailConfig, WebhookConfig
from streams.notification import decode_notification, encode_notification, idempotency_key, webhook_body
from streams.signature import verify_signature

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
    hook = WebhookConfig("ops", "https://x.example/in", "k" * 20, headers={"X-Team": "a"})
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
