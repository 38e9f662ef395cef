"""Hook senders: one attempt of one notification through one hook, as an :class:`Attempt`.

Senders never raise for a failed delivery: every outcome is an
:class:`streams.delivery.Attempt` (delivered / retry / permanent) whose ``detail`` has the
hook's secrets masked, ready to log and to dead-letter. The hook's secret references are
resolved here, at each attempt (``agents/hooks/secrets.py``); one that cannot be resolved is
a failed attempt to retry (the operator can set the variable or mount the file meanwhile).
"""

from __future__ import annotations

import aiohttp

from agents.hooks.email import send_email
from agents.hooks.secrets import resolved
from agents.hooks.webhook import send_webhook
from streams.delivery import Attempt
from streams.hooks import EmailConfig, HookConfig
from streams.notification import Notification

__all__ = ["send_email", "send_notification", "send_webhook"]


async def send_notification(
    hook: HookConfig, notification: Notification, *, session: aiohttp.ClientSession, now_ms: int
) -> Attempt:
    """One attempt through ``hook``, whichever kind it is, its secrets resolved on this worker."""
    try:
        ready = resolved(hook)
    except ValueError as exc:
        return Attempt("retry", hook.scrub(str(exc)))
    if isinstance(ready, EmailConfig):
        return await send_email(ready, notification)
    return await send_webhook(session, ready, notification, now_ms=now_ms)
