"""A worker's web port lets no one in (issue 16 item 4; docs/control.md, "Access").

Real worker processes on the session broker, real HTTP requests. A refused request must
change nothing: the control topic's end offset stays where it was (no command was even
sent) and the control client reads the same inference states as before.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition

from agents.control_client import ControlClient
from agents.kafka_io import reader_consumer
from agents.worker_process import WorkerProcess
from tests.integration.harness import Pipeline, wait_for
from tests.integration.test_control_plane import pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

TOKEN = "aw-test-token-0123456789abcdef"


def call(port: int, method: str, path: str, body: dict[str, Any] | None = None,
         token: str | None = None) -> tuple[int, Any, dict[str, str]]:
    """(status, body — parsed when JSON —, headers) of one request to the worker."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else orjson.dumps(body), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, parsed(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, parsed(err.read()), dict(err.headers)


def parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


def control_end(p: Pipeline) -> int:
    """How many commands were ever sent: the end offset of the (one-partition) control topic."""
    consumer = reader_consumer(p.kafka, "control-end")
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(p.settings.topics.control, 0),
                                                  timeout=10)[1])
    finally:
        consumer.close()


def token_worker(p: Pipeline, tmp_path: Path, *extra: str) -> WorkerProcess:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN + "\n")
    return p.worker(extra_args=["--api-token-file", str(token_file), *extra])


def wait_live(w: WorkerProcess) -> None:
    """Until the worker's readiness probe (always open) answers 200."""
    def ready() -> bool:
        try:
            return call(w.web_port, "GET", "/readyz")[0] == 200
        except OSError:
            return False
    wait_for(ready, 60, "the worker's /readyz")


CREATE = {"name": "guarded", "model_id": "pumps"}
#: every mutating request of the control API, each sent with no token and with a wrong one
MUTATIONS = [
    ("POST", "/assetwatch/inferences/", {"name": "intruder", "model_id": "pumps"}),
    ("POST", "/assetwatch/inferences/guarded/pause/", None),
    ("POST", "/assetwatch/inferences/guarded/delete/", None),
    ("POST", "/assetwatch/inferences/guarded/restart/", None),
    ("POST", "/assetwatch/inferences/guarded/update-model/", {"model_id": "pumps"}),
    ("DELETE", "/assetwatch/inferences/guarded/", None),
    ("PUT", "/assetwatch/inferences/guarded/", {"model_id": "pumps"}),
]


def test_mutating_requests_without_the_right_token_are_refused_and_change_nothing(
        pipeline: Pipeline, tmp_path: Path) -> None:  # noqa: F811
    client = ControlClient(pipeline.kafka, pipeline.settings)
    with token_worker(pipeline, tmp_path) as w:
        w.wait_ready(60)
        status, created, _ = call(w.web_port, "POST", "/assetwatch/inferences/",
                                  {**CREATE, "topic": pipeline.settings.topics.telemetry}, TOKEN)
        assert status == 200 and created["accepted"], created
        before_states = {k: s.to_record() for k, s in client.states().items()}
        before_end = control_end(pipeline)
        assert before_states["guarded"]["status"] == "Active"

        for method, path, body in MUTATIONS:
            status, answer, headers = call(w.web_port, method, path, body)
            assert status == 401, (method, path, answer)
            assert "Authorization: Bearer" in answer["error"]
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
            status, answer, _ = call(w.web_port, method, path, body, token=TOKEN[:-1] + "X")
            assert (status, answer) == (403, {"error": "wrong API token"}), (method, path)

        assert control_end(pipeline) == before_end  # not one command was sent
        assert {k: s.to_record() for k, s in client.states().items()} == before_states
        assert [e["type"] for e in client.events("guarded")
                if e.get("kind") == "command_result"] == ["create"]
        assert "intruder" not in client.states()

        # reads stay open; the right token still commands
        status, listed, _ = call(w.web_port, "GET", "/assetwatch/inferences/")
        assert status == 200 and [s["inference_id"] for s in listed] == ["guarded"]
        assert call(w.web_port, "GET", "/metrics")[0] == 200
        status, paused, _ = call(w.web_port, "POST", "/assetwatch/inferences/guarded/pause/",
                                 None, TOKEN)
        assert status == 200 and paused["accepted"], paused
        wait_for(lambda: client.states()["guarded"].status == "UserPaused", 10, "the pause")


def test_without_a_configured_token_the_rest_control_api_is_off(pipeline: Pipeline) -> None:  # noqa: F811
    client = ControlClient(pipeline.kafka, pipeline.settings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        before_end = control_end(pipeline)
        status, answer, _ = call(w.web_port, "POST", "/assetwatch/inferences/",
                                 {**CREATE, "topic": pipeline.settings.topics.telemetry},
                                 token=TOKEN)
        assert status == 403
        assert "no API token is configured" in answer["error"]
        assert "ASSETWATCH_API_TOKEN" in answer["error"]
        assert control_end(pipeline) == before_end
        assert client.states() == {}
        status, listed, _ = call(w.web_port, "GET", "/assetwatch/inferences/")
        assert (status, listed) == (200, [])


def test_reads_can_be_closed_too_but_the_probes_stay_open(pipeline: Pipeline,  # noqa: F811
                                                          tmp_path: Path) -> None:
    with token_worker(pipeline, tmp_path, "--api-reads", "token") as w:
        wait_live(w)
        for path in ("/metrics", "/assetwatch/status/", "/assetwatch/inferences/",
                     "/assetwatch/hooks/"):
            assert call(w.web_port, "GET", path)[0] == 401, path
            assert call(w.web_port, "GET", path, token="not-the-token-at-all")[0] == 403, path
            assert call(w.web_port, "GET", path, token=TOKEN)[0] == 200, path
        assert call(w.web_port, "GET", "/healthz")[0] == 200


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the IPv4 sockets listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            octets = bytes.fromhex(addr_hex)[::-1]  # little-endian on the machines we run on
            found.add(".".join(str(b) for b in octets))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/net/tcp")
def test_the_web_server_binds_loopback_unless_told_otherwise(pipeline: Pipeline) -> None:  # noqa: F811
    with pipeline.worker() as w:
        w.wait_ready(60)
        assert listening_addresses(w.web_port) == {"127.0.0.1"}
    with pipeline.worker(extra_args=["--web-host", "0.0.0.0"]) as w:
        w.wait_ready(60)
        assert listening_addresses(w.web_port) == {"0.0.0.0"}
