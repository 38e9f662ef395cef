"""The webhook sender: a signed JSON POST (aiohttp client, the one Faust already depends on).

Headers: ``Content-Type: application/json``, ``X-Assetwatch-Timestamp`` (epoch ms),
``X-Assetwatch-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``,
``Idempotency-Key`` (the same for every attempt of one notification through one hook), then
the hook's extra headers. Redirects are not followed. 2xx: delivered; 4xx other than 408 and
429: permanent; anything else, a timeout or a connection error: retry (docs/hooks.md).
"""

from __future__ import annotations

import aiohttp

from streams.delivery import Attempt, classify_http_status
from streams.hooks import WebhookConfig
from streams.notification import Notification, idempotency_key, webhook_body
from streams.signature import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

USER_AGENT = "assetwatch-hooks/1"
MAX_DETAIL_BODY_CHARS = 200


def request_headers(hook: WebhookConfig, notification: Notification, body: bytes,
                    now_ms: int) -> dict[str, str]:
    """The headers of one attempt (the signature covers this timestamp and exactly ``body``).

    ``hook`` is resolved (``agents/hooks/secrets.py``): its secrets are values."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(now_ms),
        SIGNATURE_HEADER: sign(hook.secret.reveal().encode(), now_ms, body),
        IDEMPOTENCY_HEADER: idempotency_key(notification, hook.name),
        "X-Assetwatch-Notification-Id": notification.notification_id,
        **hook.header_values(),
    }


async def send_webhook(session: aiohttp.ClientSession, hook: WebhookConfig,
                       notification: Notification, *, now_ms: int) -> Attempt:
    """POST the notification once; the outcome as an :class:`Attempt` (secrets masked)."""
    body = webhook_body(notification)
    headers = request_headers(hook, notification, body, now_ms)
    try:
        async with session.post(hook.url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=hook.timeout_s)) as resp:
            text = (await resp.text(errors="replace"))[:MAX_DETAIL_BODY_CHARS].strip()
            kind = classify_http_status(resp.status)
            detail = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
            if kind != "delivered" and text:
                detail += f": {' '.join(text.split())}"
            if 300 <= resp.status < 400:
                detail += " (redirects are not followed)"
            return Attempt(kind, hook.scrub(detail))
    except TimeoutError:
        return Attempt("retry", f"no response within {hook.timeout_s:g} s")
    except aiohttp.InvalidURL as exc:
        return Attempt("permanent", hook.scrub(f"invalid URL: {exc}"))
    except aiohttp.ClientError as exc:
        return Attempt("retry", hook.scrub(f"{type(exc).__name__}: {exc}"))
