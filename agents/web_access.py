"""The web port's gate: an aiohttp middleware applying :func:`streams.access.decide_access`.

Installed on the whole web application (``create_app``), so every route — the control API,
the status pages, ``/metrics``, Faust's own views and any route added later — goes through
it: a mutating request without the operator's token is answered 401/403 with a JSON reason
before any handler runs, so it changes nothing (docs/control.md, "Access").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from streams.access import AccessPolicy, decide_access

log = logging.getLogger("assetwatch.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def access_middleware(policy: AccessPolicy) -> Middleware:
    """The middleware enforcing ``policy`` (refusals logged without any credential)."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = decide_access(policy, request.method, request.path,
                                request.headers.get("Authorization"))
        if refusal is None:
            return await handler(request)
        log.warning("refused %s %s from %s: %s", request.method, request.path,
                    request.remote, refusal.reason)
        headers = {"WWW-Authenticate": 'Bearer realm="assetwatch"'} if refusal.challenge else {}
        return web.json_response({"error": refusal.reason}, status=refusal.status, headers=headers)

    return check_access
