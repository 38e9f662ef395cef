"""Hook senders: one attempt of one notification through one hook, as an :class:`Attempt`.

Senders never raise for a failed delivery: every outcome is an
:class:`streams.delivery.Attempt` (delivered / retry / permanent) whose ``detail`` has the
hook's secrets masked, ready to log and to dead-letter.
"""

from __future__ import annotations

import aiohttp

from agents.hooks.email import send_email
from agents.hooks.webhook import send_webhook
from streams.delivery import Attempt
from streams.hooks import EmailConfig, HookConfig
from streams.notification import Notification

__all__ = ["send_email", "send_notification", "send_webhook"]


async def send_notification(
    hook: HookConfig, notification: Notification, *, session: aiohttp.ClientSession, now_ms: int
) -> Attempt:
    """One attempt through ``hook``, whichever kind it is."""
    if isinstance(hook, EmailConfig):
        return await send_email(hook, notification)
    return await send_webhook(session, hook, notification, now_ms=now_ms)
