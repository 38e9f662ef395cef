"""``/healthz`` and ``/readyz`` on a real worker process, and the readiness rules on a stub app."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from agents.connection import KafkaConnection
from agents.health import Readiness, worker_readiness
from agents.worker_process import WorkerProcess
from tests.integration.harness import Pipeline, wait_for


def get(port: int, path: str) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON body) of a GET on the worker, None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())
    except OSError:
        return None


def http_status(port: int, path: str) -> int | None:
    """The HTTP status of a GET on the worker, whatever its body; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def health_worker(p: Pipeline) -> WorkerProcess:
    w = p.worker()
    w.args[1:4] = ["-m", "tests.integration.health_worker", "worker"]
    return w


@pytest.mark.integration
def test_a_worker_is_live_at_once_and_ready_once_its_partitions_are_recovered(
    kafka: KafkaConnection, unique: str, tmp_path: Path
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    with health_worker(p) as w:
        answers: list[tuple[int, dict[str, Any]]] = []

        def ready() -> bool:
            got = get(w.web_port, "/readyz")
            if got is not None:
                answers.append(got)
            return got is not None and got[0] == 200

        wait_for(ready, 60, "/readyz to answer 200")
        assert get(w.web_port, "/healthz") == (200, {"status": "ok"})
        # Faust's own views of table contents and of the partition map are not served
        for faust_view in ("/table/", "/table/asset-state/", "/router/"):
            assert http_status(w.web_port, faust_view) == 404, faust_view
        status = w.status()
    assert status is not None and status["ready"]
    assert sorted(status["assigned_partitions"]) == list(range(p.settings.partitions))
    assert status["event_loop"] == "uvloop"  # the default (Settings.event_loop)
    # the web server answers before the group join ends: first a 503 saying so
    assert answers[0] == (503, {"status": "unavailable",
                                "reason": "no partitions assigned yet: joining the consumer group"})
    # before it was ready, every answer was a 503 that said why
    for code, body in answers[:-1]:
        assert code == 503 and body["status"] == "unavailable" and body["reason"], body
    assert answers[-1] == (200, {"status": "ok"})
    assert w.proc is not None and w.proc.returncode == 0


class _Event:
    def __init__(self, done: bool) -> None:
        self.done = done

    def is_set(self) -> bool:
        return self.done


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fun: Any) -> None:
        self.receivers.append(fun)


def stub_app(recovered: bool = False) -> Any:
    return SimpleNamespace(
        on_partitions_assigned=_Signal(), rebalancing=False, in_recovery=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=_Event(recovered))),
    )


def test_readiness_says_why_until_assigned_settled_and_recovered() -> None:
    app = stub_app()
    check = worker_readiness(app)
    assert check() == Readiness(False, "no partitions assigned yet: joining the consumer group")
    for receiver in app.on_partitions_assigned.receivers:
        asyncio.run(receiver(app, {("t", 0)}))
    assert not check().ready and "recovering" in check().reason
    app.tables.recovery.completed.done = True
    app.rebalancing = True
    assert not check().ready and "rebalancing" in check().reason
    app.rebalancing = False
    assert check() == Readiness(True)
    app.in_recovery = True  # a later rebalance recovers again: not ready meanwhile
    assert not check().ready


def test_readiness_waits_for_the_extra_checks_it_was_given_even_added_later() -> None:
    app = stub_app(recovered=True)
    extra: list[Any] = []
    check = worker_readiness(app, extra)
    asyncio.run(app.on_partitions_assigned.receivers[0](app, set()))
    assert check() == Readiness(True)

    def control_state_loaded() -> bool:
        return False

    extra.append(control_state_loaded)
    assert check() == Readiness(False, "waiting for control_state_loaded")
