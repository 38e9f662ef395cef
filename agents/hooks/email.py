"""The e-mail sender: stdlib ``smtplib`` in a thread (no extra dependency needed).

One message per notification: subject and plain-text body from
:func:`streams.notification.email_text`; ``Message-ID`` derived from the idempotency key, so
every attempt of one notification is the same message to mail software. ``tls``: ``none``
(plain SMTP), ``starttls`` (upgrade, certificate verified), ``ssl`` (implicit TLS).

SMTP replies 5xx (refused sender or recipients, failed login, message refused) and TLS
certificate errors are permanent; 4xx replies, timeouts and connection errors are retried.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from streams.delivery import Attempt
from streams.hooks import EmailConfig
from streams.notification import Notification, email_text, idempotency_key


def build_message(hook: EmailConfig, notification: Notification) -> EmailMessage:
    """The message for one notification (headers, plain-text body)."""
    subject, body = email_text(notification)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = hook.sender
    msg["To"] = ", ".join(hook.to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = f"<{idempotency_key(notification, hook.name)}@assetwatch>"
    msg["X-Assetwatch-Notification-Id"] = notification.notification_id
    msg.set_content(body)
    return msg


def _send_sync(hook: EmailConfig, msg: EmailMessage) -> None:
    port = hook.port or 0
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if hook.tls == "ssl":
        smtp = smtplib.SMTP_SSL(hook.host, port, timeout=hook.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(hook.host, port, timeout=hook.timeout_s)
    with smtp:
        if hook.tls == "starttls":
            smtp.starttls(context=context)
        if hook.username is not None and hook.password is not None:
            smtp.login(hook.username, hook.password.reveal())
        smtp.send_message(msg)


def classify_smtp_error(exc: BaseException) -> Attempt:
    """What a failure of ``smtplib`` means: permanent (5xx, TLS trust, no STARTTLS) or retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{addr} ({code})" for addr, (code, _) in exc.recipients.items())
        permanent = all(500 <= c < 600 for c in codes)
        return Attempt("permanent" if permanent else "retry", f"SMTP recipients refused: {refused}")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        permanent = 500 <= exc.smtp_code < 600
        detail = f"SMTP {exc.smtp_code} {' '.join(text.split())}"
        return Attempt("permanent" if permanent else "retry", detail)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Attempt("permanent", f"SMTP server does not support it: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Attempt("permanent", f"TLS certificate not trusted: {exc.verify_message}")
    if isinstance(exc, TimeoutError):
        return Attempt("retry", "SMTP server did not answer in time")
    return Attempt("retry", f"{type(exc).__name__}: {exc}")


async def send_email(hook: EmailConfig, notification: Notification) -> Attempt:
    """Send the notification's e-mail once; the outcome as an :class:`Attempt` (password masked)."""
    msg = build_message(hook, notification)
    try:
        await asyncio.get_running_loop().run_in_executor(None, _send_sync, hook, msg)
    except (smtplib.SMTPException, OSError) as exc:
        attempt = classify_smtp_error(exc)
        return Attempt(attempt.kind, hook.scrub(attempt.detail))
    return Attempt("delivered", f"accepted by {hook.host}:{hook.port} for {len(hook.to)} recipient(s)")
