"""Liveness and readiness of a worker: ``/healthz`` and ``/readyz`` on its web server.

* ``/healthz`` answers 200 while the worker runs (its event loop serves requests and the app
  has not crashed); 503 once it crashed or is stopping. For a liveness probe: restart on 503
  or silence.
* ``/readyz`` answers 200 only once the worker holds its partitions and its tables are
  recovered, else 503 with the reason (joining the group, rebalancing, recovering tables).
  For a readiness probe or a script waiting before it sends data.

Both answer JSON: ``{"status": "ok"|"unavailable", "reason": ...}``.

>>> check = lambda: Readiness(False, "recovering tables")
>>> readiness_of(check), readiness_of(lambda: True)
(Readiness(ready=False, reason='recovering tables'), Readiness(ready=True, reason=''))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust

__all__ = ["Readiness", "readiness_of", "register_health_views", "worker_readiness"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the worker is ready and, when it is not, why (one short line)."""

    ready: bool
    reason: str = ""


ReadinessCheck = Callable[[], "bool | Readiness"]


def readiness_of(check: ReadinessCheck) -> Readiness:
    """The answer of a readiness check, a plain bool taken as ready / "not ready"."""
    got = check()
    if isinstance(got, Readiness):
        return got
    return Readiness(True) if got else Readiness(False, "not ready")


def worker_readiness(
    app: faust.App, also: Sequence[Callable[[], bool]] = ()
) -> Callable[[], Readiness]:
    """The readiness of a Faust worker app: assigned its partitions, not rebalancing, tables
    recovered, and every check in ``also`` true (read at each call, so a list that grows
    later counts; a failing check is named by its ``__name__``).

    Call it before the app starts: it listens for the first partition assignment.
    """
    seen = {"assigned": False, "partitions": 0}

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        seen["assigned"] = True
        seen["partitions"] = len(assigned)

    # Faust's signal typing does not admit coroutine receivers; they are what it awaits
    cast(Any, app.on_partitions_assigned).connect(on_assigned)

    def check() -> Readiness:
        if not seen["assigned"]:
            return Readiness(False, "no partitions assigned yet: joining the consumer group")
        if app.rebalancing:
            return Readiness(False, "rebalancing: partitions are moving between workers")
        recovery = cast(Any, app.tables).recovery
        if app.in_recovery or not recovery.completed.is_set():
            return Readiness(False, "recovering tables from their changelogs")
        for extra in also:
            if not extra():
                name = getattr(extra, "__name__", "<lambda>")
                what = "the worker's own readiness check" if name == "<lambda>" else name
                return Readiness(False, f"waiting for {what}")
        return Readiness(True)

    return check


def register_health_views(app: faust.App, is_ready: ReadinessCheck) -> None:
    """Add ``/healthz`` and ``/readyz`` to the app's web server (once; later calls do nothing).

    ``is_ready`` returns a bool or a :class:`Readiness` carrying the reason; usually
    :func:`worker_readiness` of the same app.
    """
    if getattr(app, "_assetwatch_health", False):
        return
    cast(Any, app)._assetwatch_health = True

    @app.page("/healthz", name="assetwatch_healthz")
    async def healthz(web: Any, request: Any) -> Any:
        if app.crashed:
            return web.json({"status": "unavailable", "reason": f"crashed: {app.crash_reason}"},
                            status=503)
        if app.should_stop:
            return web.json({"status": "unavailable", "reason": "stopping"}, status=503)
        return web.json({"status": "ok"})

    @app.page("/readyz", name="assetwatch_readyz")
    async def readyz(web: Any, request: Any) -> Any:
        state = readiness_of(is_ready)
        if state.ready:
            return web.json({"status": "ok"})
        return web.json({"status": "unavailable", "reason": state.reason}, status=503)
