"""Bad control input through every public door (issue 17 items 5-7): the CLI, the REST API
and the control topic refuse it with one readable reason, the controller lives on, and a
producer cannot issue the workers' internal commands.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents import control_client
from agents.connection import KafkaConnection
from agents.control_client import ControlClient
from agents.kafka_io import make_producer
from streams.command_ids import COMMAND_ID_RETENTION_MS
from streams.control import Command
from tests.integration.harness import Pipeline, rest_call, wait_for
from tests.integration.test_control_plane import cli, now_ms, pipeline, state_of

pytestmark = pytest.mark.integration
__all__ = ["pipeline"]  # the fixture, shared with the control plane's tests


def command(pipeline: Pipeline, record: dict[str, Any] | bytes) -> str:
    """Put one record on the public control topic, as any producer can; return its id."""
    cid = record.get("command_id", "?") if isinstance(record, dict) else "?"
    value = record if isinstance(record, bytes) else orjson.dumps(record)
    producer = make_producer(pipeline.kafka)
    producer.produce(pipeline.settings.topics.control, key=b"k", value=value)
    assert producer.flush(10) == 0
    return str(cid)


def results(client: ControlClient, command_id: str) -> list[dict[str, Any]]:
    return [e for e in client.events() if e.get("kind") == "command_result"
            and e.get("command_id") == command_id]


def raw(type_: str, inference: str, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"command_id": f"raw-{uuid.uuid4().hex[:12]}", "type": type_, "inference_id": inference,
            "params": params, "issued_at": 1_767_225_600_000, "issued_by": "someone", **fields}


def test_out_of_range_numbers_on_the_control_topic_are_rejected_and_the_controller_lives_on(
        pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    topic = pipeline.settings.topics.telemetry
    create = {"model_id": "pumps", "topic": topic}
    bad = {
        "delay": raw("create", "n1", {**create, "delay_ms": 1e300}),
        "huge int": raw("create", "n2", {**create, "start_ms": 10**19}),
        "sensitivity": raw("create", "n3", {**create, "sensitivity": 1e300}),
        "issued_at": raw("pause", "n4", {}, issued_at=1e300),
    }
    reasons = {
        "delay": "data delay offset (ms, at most 7 days) must be from 0 to 604800000, got 1e+300",
        "huge int": "start (epoch ms, before 2100-01-01) must be from 0 to 4102444799999",
        "sensitivity": "sensitivity must be from 1 to 100, got 1e+300",
        "issued_at": "invalid command: issued_at (epoch ms) must be from 0",
    }
    with pipeline.worker() as w:
        w.wait_ready(60)
        for record in bad.values():
            command(pipeline, record)
        good = command(pipeline, raw("create", "after", create))
        wait_for(lambda: results(client, good), 60, "the command after the bad ones decided")
        for name, record in bad.items():
            (result,) = results(client, record["command_id"])  # exactly one result each
            assert not result["accepted"] and reasons[name] in result["reason"], (name, result)
        (accepted,) = results(client, good)
        assert accepted["accepted"], accepted
        assert w.proc is not None and w.proc.poll() is None, "the worker is still running"
        assert cli(pipeline, "pause", "after").returncode == 0
        updated = raw("update_model", "after", {"model_id": "pumps", "model_version": 1e300})
        command(pipeline, updated)
        (result,) = wait_for(lambda: results(client, updated["command_id"]), 30, "its result")
        assert result["reason"] == ("update_model: model version must be from 1 to 2147483647, "
                                    "got 1e+300")


CLI_CASES: dict[tuple[str, ...], str] = {
    ("--delay", "inf"): "data delay offset must be a number of seconds from 0 to 604800, got inf",
    ("--delay", "-inf"): "got -inf",
    ("--delay", "1e400"): "got inf",
    ("--delay", "1e300"): "got 1e+300",
    ("--delay", "nan"): "got nan",
    ("--delay", "1e12"): "got 1000000000000.0",
    ("--start", "9999-12-31T00:00:00Z"): "start (epoch ms, before 2100-01-01) must be from 0 to "
                                         "4102444799999, got 253402214400000",
    ("--start", "99999999999999999"): "got 99999999999999999",
    ("--asset", ""): "asset id '' must be 1-256 characters",
}


def test_the_cli_refuses_out_of_bounds_settings_in_one_line_as_rest_and_the_topic_do(
        pipeline: Pipeline, tmp_path: Path) -> None:
    topic = pipeline.settings.topics.telemetry
    client = ControlClient(pipeline.kafka, pipeline.settings)
    token = "bounds-api-token-0123456789"  # REST commands need the operator's token
    (tmp_path / "api-token").write_text(token)

    def rest(body: dict[str, Any]) -> tuple[int, Any]:
        return rest_call(w.web_port, "POST", "/assetwatch/inferences/", body, token)

    with pipeline.worker(extra_args=["--api-token-file", str(tmp_path / "api-token")]) as w:
        w.wait_ready(60)
        for args, reason in CLI_CASES.items():
            done = cli(pipeline, "create", "bounded", "--model", "pumps", "--topic", topic,
                       "--clock", "event", *args)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert done.stderr.startswith("assetwatch: rejected: invalid inference: "), done.stderr
            assert reason in done.stderr and done.stderr.count("\n") == 1, (args, done.stderr)
            assert "Traceback" not in done.stderr
        # the same core check behind the REST API and the control topic
        body = {"model_id": "pumps", "topic": topic, "clock": "event", "delay_ms": 10**15}
        status, result = rest({"name": "bounded", **body})
        assert status == 409 and "data delay offset (ms, at most 7 days)" in result["reason"]
        record = raw("create", "bounded", {**body, "assets": [""]})
        command(pipeline, record)
        (result,) = wait_for(lambda: results(client, record["command_id"]), 30, "its result")
        assert "asset id '' must be 1-256 characters" in result["reason"]
        assert "bounded" not in client.states()


def test_a_producer_cannot_system_pause_an_inference(pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        assert cli(pipeline, "create", "guarded", "--model", "pumps", "--topic",
                   pipeline.settings.topics.telemetry).returncode == 0
        spoof = raw("fail", "guarded", {"error": "spoofed"}, issued_by="worker:evil")
        command(pipeline, spoof)
        (result,) = wait_for(lambda: results(client, spoof["command_id"]), 30, "its result")
        assert not result["accepted"]
        assert result["reason"] == ("fail is an internal command (a worker's report or request); "
                                    "it is not accepted from the public control topic")
        assert state_of(client, "guarded").status == "Active"


def test_malformed_bytes_on_the_control_topic_get_one_rejection(pipeline: Pipeline) -> None:
    client = ControlClient(pipeline.kafka, pipeline.settings)
    with pipeline.worker() as w:
        w.wait_ready(60)
        command(pipeline, b'{"command_id": "nonsense-1", "type": "pause", "inference_id": 7}')
        (result,) = wait_for(lambda: results(client, "nonsense-1"), 30, "its result")
        assert not result["accepted"] and "inference_id is required" in result["reason"]


def test_command_ids_past_their_retention_are_forgotten_and_the_event_log_is_read_from_its_tail(
    kafka: KafkaConnection, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Pipeline.create(kafka, unique, tmp_path)
    client = ControlClient(kafka, p.settings)
    inf = p.inference.inference_id
    changelog = f"{p.settings.app_id}-control-state-changelog"
    with p.worker() as w:
        w.wait_ready(60)
        recent = client.send(client.command("pause", inf))
        assert recent["accepted"], recent
        rows = wait_for(lambda: [(k, v) for k, v in p.read(changelog)
                                 if k and recent["command_id"].encode() in k], 30,
                        "the command's id in the controller's table")
    # a result the controller stored long ago, as a worker of last month wrote it
    recent_key = rows[0][0]
    old_key = recent_key.replace(recent["command_id"].encode(), b"cmd-of-last-month")
    old = {**recent, "command_id": "cmd-of-last-month", "type": "restart", "accepted": False,
           "reason": "restart needs a paused inference; inf is Active",
           "at": now_ms() - COMMAND_ID_RETENTION_MS - 60_000}
    producer = make_producer(kafka)
    producer.produce(changelog, key=old_key, value=orjson.dumps(old), partition=0)
    assert producer.flush(10) == 0

    with p.worker("second.log") as w:
        w.wait_ready(60)
        wait_for(lambda: (old_key, None) in p.read(changelog), 30,
                 "the old command id forgotten: a tombstone on the table's changelog")
        assert (recent_key, None) not in p.read(changelog), "a recent id is remembered"
        # re-sent, the recent command gets its first result; the forgotten one is decided anew
        again = client.send(Command(recent["command_id"], "pause", inf, {}, now_ms(), "test"))
        assert again == recent
        anew = client.send(Command("cmd-of-last-month", "restart", inf, {}, now_ms(), "test"))
        assert anew["accepted"] and anew["at"] > old["at"], anew

    # inference show reads the event log's newest records only, however long it grows
    monkeypatch.setattr(control_client, "EVENTS_TAIL", 2)
    assert [e.get("command_id") for e in client.events(inf)] == [
        recent["command_id"], "cmd-of-last-month"], "the last two records: the two answers"
