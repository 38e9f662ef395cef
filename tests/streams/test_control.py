"""The control plane's state machine (SPEC §5.1 scheduling rules, §5.4 control and status).

Each test is named after the rule it checks.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from streams.codec import dumps
from streams.control import (
    Command,
    InferenceState,
    ModelInfo,
    StaticCatalog,
    decide,
)

NOW = 1_767_225_600_000
VALIDATE_STATUS = schemas.validator("status-event.v1")
VALIDATE_COMMAND = schemas.validator("control-command.v1")

CATALOG = StaticCatalog(
    models={
        ("pumps", 1): ModelInfo("pumps", 1, "completed", ("temp", "vib")),
        ("pumps", 2): ModelInfo("pumps", 2, "completed", ("vib", "temp")),
        ("other", 1): ModelInfo("other", 1, "completed", ("temp", "flow")),
        ("training", 1): ModelInfo("training", 1, "running", ("temp", "vib")),
        ("broken", 1): ModelInfo("broken", 1, "failed", ("temp", "vib"), "not enough rows"),
    },
    topics={"tele": frozenset({"temp", "vib", "flow"}), "quiet": None,
            "vib-only": frozenset({"vib"})},
    hooks=frozenset({"ops-webhook"}),
)


def cmd(type_: str, params: dict[str, Any] | None = None, inference: str = "line-3",
        cid: str = "c") -> Command:
    return Command(cid, type_, inference, params or {}, NOW, "test")  # type: ignore[arg-type]


def create(**params: Any) -> Command:
    return cmd("create", {"model_id": "pumps", "topic": "tele", **params})


def active() -> InferenceState:
    d = decide(None, create(), CATALOG, NOW)
    assert d.state is not None
    return d.state


def paused(at: int = NOW + 1_000) -> InferenceState:
    state = decide(active(), cmd("pause"), CATALOG, at).state
    assert state is not None
    return state


def test_create_is_active_from_now_with_the_latest_completed_version_pinned() -> None:
    d = decide(None, create(), CATALOG, NOW)
    assert d.accepted and d.state is not None
    assert (d.state.status, d.state.epoch, d.state.active_from_ms) == ("Active", 1, NOW)
    assert d.state.config.model_version == 2


def test_a_future_start_time_is_kept() -> None:
    d = decide(None, create(start_ms=NOW + 3_600_000), CATALOG, NOW)
    assert d.state is not None and d.state.active_from_ms == NOW + 3_600_000


@pytest.mark.parametrize(("params", "reason"), [
    ({"start_ms": NOW - 3_600_000}, "start time 1767222000000 is in the past"),
    ({"model_id": "nope"}, "no model 'nope'"),
    ({"model_id": "training"}, "model 'training' v1 is running"),
    ({"model_id": "broken"}, "is failed (not enough rows)"),
    ({"model_id": "pumps", "model_version": 7}, "no model 'pumps' v7"),
    ({"topic": "elsewhere"}, "unknown topic 'elsewhere'"),
    ({"delay_ms": -1}, "data delay offset (ms, at most 7 days) must be from 0 to 604800000, got -1"),
    ({"sensitivity": 0}, "sensitivity"),
    ({"topic": "vib-only"}, "needs signal(s) temp that topic 'vib-only' does not carry"),
    ({"hooks": ["pager"]}, "unknown hook 'pager'"),
    ({"alerts": [{"name": "a", "correlation_points": -1}]}, "correlation window"),
    ({"colour": "red"}, "unknown inference field(s): colour"),
])
def test_create_is_rejected_with_a_readable_reason(params: dict[str, Any], reason: str) -> None:
    d = decide(None, create(**params), CATALOG, NOW)
    assert not d.accepted and d.state is None
    assert reason in d.reason


def test_every_problem_of_a_create_is_reported_at_once() -> None:
    d = decide(None, create(model_id="nope", topic="elsewhere", start_ms=0), CATALOG, NOW)
    assert "in the past" in d.reason and "no model" in d.reason and "unknown topic" in d.reason


def test_signals_are_checked_only_once_the_topic_has_data() -> None:
    assert decide(None, create(topic="quiet"), CATALOG, NOW).accepted


def test_a_start_within_the_transit_tolerance_is_not_in_the_past() -> None:
    assert decide(None, create(start_ms=NOW - 5_000), CATALOG, NOW).accepted


def test_event_clock_inferences_start_in_the_feeds_own_time() -> None:
    assert decide(None, create(clock="event", start_ms=0), CATALOG, NOW).accepted


def test_a_duplicate_name_is_rejected() -> None:
    d = decide(active(), create(), CATALOG, NOW)
    assert not d.accepted and "exists (Active)" in d.reason


def test_a_deleted_inference_frees_its_name() -> None:
    deleted = decide(paused(), cmd("delete"), CATALOG, NOW + 2_000).state
    assert deleted is not None and deleted.status == "Deleted"
    assert decide(deleted, create(), CATALOG, NOW + 3_000).accepted


def test_a_declaration_repeated_unchanged_is_accepted_without_a_new_state() -> None:
    first = decide(None, create(declare=True, clock="event"), CATALOG, NOW).state
    again = decide(first, create(declare=True, clock="event"), CATALOG, NOW + 1)
    assert again.accepted and again.state is None
    changed = decide(first, create(declare=True, clock="event", sensitivity=90), CATALOG, NOW)
    assert not changed.accepted


@pytest.mark.parametrize(("start", "command", "accepted", "status_after"), [
    ("Active", "pause", True, "UserPaused"),
    ("UserPaused", "pause", False, "UserPaused"),
    ("UserPaused", "restart", True, "Active"),
    ("Active", "restart", False, "Active"),
    ("SystemPaused", "restart", True, "Active"),
    ("Active", "delete", False, "Active"),
    ("UserPaused", "delete", True, "Deleted"),
    ("SystemPaused", "delete", True, "Deleted"),
    ("Active", "fail", True, "SystemPaused"),
    ("UserPaused", "fail", False, "UserPaused"),
    ("Active", "replay", False, "Active"),  # no ReplayContext: see test_replay.py
])
def test_status_moves(start: str, command: str, accepted: bool, status_after: str) -> None:
    states = {"Active": active(), "UserPaused": paused(),
              "SystemPaused": decide(active(), cmd("fail", {"error": "boom"}), CATALOG, NOW,
                                     internal=True).state}
    before = states[start]
    assert before is not None
    d = decide(before, cmd(command), CATALOG, NOW + 5_000, internal=True)
    assert d.accepted is accepted
    after = d.state if d.state is not None else before
    assert after.status == status_after
    if not accepted:
        assert d.reason and d.state is None


def test_commands_on_an_unknown_inference_are_rejected() -> None:
    d = decide(None, cmd("pause"), CATALOG, NOW)
    assert not d.accepted and d.reason == "no inference named 'line-3'"


def test_restart_starts_a_new_epoch_and_reports_the_paused_period_as_a_gap() -> None:
    d = decide(paused(at=NOW + 1_000), cmd("restart"), CATALOG, NOW + 61_000)
    assert d.state is not None
    assert (d.state.epoch, d.state.active_from_ms, d.state.config.start_ms) == (2, NOW + 61_000,
                                                                                 NOW + 61_000)
    assert d.gap == (NOW + 1_000, NOW + 61_000)


def test_system_pause_records_the_error_and_restart_clears_it() -> None:
    failed = decide(active(), cmd("fail", {"error": "model artifact hash mismatch"}), CATALOG, NOW,
                    internal=True)
    assert failed.state is not None and failed.state.error == "model artifact hash mismatch"
    restarted = decide(failed.state, cmd("restart"), CATALOG, NOW + 1)
    assert restarted.state is not None and restarted.state.error is None


def test_update_model_needs_a_paused_inference() -> None:
    d = decide(active(), cmd("update_model", {"model_id": "pumps", "model_version": 1}), CATALOG, NOW)
    assert not d.accepted and "needs a paused inference" in d.reason


def test_update_model_restarts_at_once_with_the_new_version() -> None:
    d = decide(paused(), cmd("update_model", {"model_id": "pumps", "model_version": 1}), CATALOG,
               NOW + 9_000)
    assert d.accepted and d.state is not None
    assert (d.state.status, d.state.epoch, d.state.config.model_version) == ("Active", 2, 1)
    assert d.gap == (NOW + 1_000, NOW + 9_000)


@pytest.mark.parametrize(("params", "reason"), [
    ({"model_id": "other"}, "signals differ"),
    ({"model_id": "training"}, "is running"),
    ({"model_id": "nope"}, "no model 'nope'"),
    ({}, "needs params.model_id"),
])
def test_update_model_is_rejected_with_a_reason(params: dict[str, Any], reason: str) -> None:
    d = decide(paused(), cmd("update_model", params), CATALOG, NOW)
    assert not d.accepted and reason in d.reason


def test_records_follow_the_schemas() -> None:
    for state in (active(), paused()):
        VALIDATE_STATUS(state.to_record())
        assert InferenceState.from_record(state.to_record()) == state
    d = decide(active(), cmd("delete"), CATALOG, NOW)
    VALIDATE_STATUS(d.result_record())
    VALIDATE_COMMAND(create().to_record())


@pytest.mark.parametrize(("record", "problem"), [
    ({"type": "pause", "inference_id": "i"}, "command_id is required"),
    ({"command_id": "c", "type": "stop", "inference_id": "i"}, "unknown command type 'stop'"),
    ({"command_id": "c", "type": "pause"}, "inference_id is required"),
    ({"command_id": "c", "type": "pause", "inference_id": "i", "params": []}, "params must be"),
])
def test_a_malformed_command_is_refused_with_its_problem(record: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        Command.from_record(record)


def test_an_internal_command_from_the_public_control_topic_is_rejected() -> None:
    d = decide(active(), cmd("fail", {"error": "spoofed"}), CATALOG, NOW)
    assert not d.accepted and d.state is None
    assert d.reason == ("fail is an internal command (a worker's report or request); it is not "
                        "accepted from the public control topic")


def test_the_same_command_on_the_internal_control_topic_system_pauses() -> None:
    d = decide(active(), cmd("fail", {"error": "boom"}), CATALOG, NOW, internal=True)
    assert d.accepted and d.state is not None and d.state.status == "SystemPaused"


def event_paused(start_ms: int = 1_700_000_000_000) -> InferenceState:
    created = decide(None, create(clock="event", start_ms=start_ms), CATALOG, NOW).state
    state = decide(created, cmd("pause"), CATALOG, NOW + 1_000).state
    assert state is not None
    return state


@pytest.mark.parametrize("command", [cmd("restart"),
                                     cmd("update_model", {"model_id": "pumps", "model_version": 1})])
def test_on_the_event_clock_a_restart_keeps_the_start_in_the_feeds_own_time(command: Command) -> None:
    d = decide(event_paused(1_700_000_000_000), command, CATALOG, NOW + 61_000)
    assert d.accepted and d.state is not None
    assert (d.state.status, d.state.epoch) == ("Active", 2)
    assert d.state.active_from_ms == d.state.config.start_ms == 1_700_000_000_000, \
        "not the wall time: a historical feed would never reach it"
    assert d.gap is None, "nothing is skipped on the feed's time, so no wall-clock gap"
    assert "nothing is skipped" in d.reason


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"delay_ms": 1e300}, "data delay offset (ms, at most 7 days) must be from 0 to 604800000, "
                          "got 1e+300"),
    ({"delay_ms": 10**12}, "data delay offset (ms, at most 7 days) must be from 0 to 604800000"),
    ({"delay_ms": float("inf")}, "data delay offset (ms, at most 7 days) must be a finite number"),
    ({"delay_ms": float("nan")}, "must be a finite number, got nan"),
    ({"delay_ms": "5"}, "data delay offset (ms, at most 7 days) must be a whole number, got '5'"),
    ({"delay_ms": 2.5}, "must be a whole number, got 2.5"),
    ({"delay_ms": True}, "must be a whole number, got True"),
    ({"start_ms": 253_402_214_400_000}, "start (epoch ms, before 2100-01-01) must be from 0 to "
                                        "4102444799999, got 253402214400000"),
    ({"start_ms": 99_999_999_999_999_999}, "start (epoch ms, before 2100-01-01) must be from 0"),
    ({"start_ms": -1}, "start (epoch ms, before 2100-01-01) must be from 0"),
    ({"start_ms": NOW + 400 * 86_400_000}, "is more than a year ahead"),
    ({"sensitivity": 1e300}, "sensitivity must be from 1 to 100, got 1e+300"),
    ({"idle_timeout_ms": 1e300}, "idle timeout (ms, at most 7 days) must be from 0"),
    ({"max_fill_points": 10**9}, "max fill points must be from 0 to 10000"),
    ({"model_version": 1e300}, "model version must be from 1 to 2147483647"),
    ({"model_version": "2"}, "model version must be a whole number"),
    ({"assets": [""]}, "asset id '' must be 1-256 characters"),
    ({"assets": [" pump"]}, "asset id ' pump' must be 1-256 characters, with no control "
                            "characters and no leading or trailing whitespace"),
    ({"assets": ["x" * 257]}, "asset id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' must be"),
    ({"assets": "pump-1"}, "assets must be a list of asset ids, got 'pump-1'"),
    ({"assets": [[1]]}, "invalid inference"),
    ({"hooks": [1]}, "hooks must be a list of hook names"),
    ({"topic": "no spaces"}, "must be a Kafka topic name"),
    ({"topic": 7}, "topic must be a string, got 7"),
    ({"clock": ["event"]}, "clock must be one of wall, event"),
    ({"alerts": ["x"]}, "invalid alert config: expected an object"),
]


@pytest.mark.parametrize(("params", "reason"), BAD_CREATES)
def test_every_setting_has_bounds_that_make_sense(params: dict[str, Any], reason: str) -> None:
    d = decide(None, create(**params), CATALOG, NOW)
    assert not d.accepted and d.state is None
    assert reason in d.reason


def test_event_clock_starts_keep_the_absolute_bounds() -> None:
    assert decide(None, create(clock="event", start_ms=946_684_800_000), CATALOG, NOW).accepted
    far = decide(None, create(clock="event", start_ms=4_102_444_800_000), CATALOG, NOW)
    assert not far.accepted and "before 2100-01-01" in far.reason


@pytest.mark.parametrize(("version", "reason"), [
    (1e300, "update_model: model version must be from 1 to 2147483647, got 1e+300"),
    ("x", "update_model: model version must be a whole number, got 'x'"),
    ([1], "update_model: model version must be a whole number, got [1]"),
])
def test_update_model_bounds_its_version(version: Any, reason: str) -> None:
    d = decide(paused(), cmd("update_model", {"model_id": "pumps", "model_version": version}),
               CATALOG, NOW)
    assert not d.accepted and d.reason == reason


@pytest.mark.parametrize(("record", "problem"), [
    ({"command_id": "c", "type": "pause", "inference_id": "i", "issued_at": 1e300},
     "issued_at (epoch ms) must be from 0"),
    ({"command_id": "c" * 300, "type": "pause", "inference_id": "i"}, "command_id must be a string"),
    ({"command_id": "c", "type": ["pause"], "inference_id": "i"}, "unknown command type"),
])
def test_a_command_out_of_bounds_is_refused(record: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        Command.from_record(record)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8)
FIELDS = st.sampled_from(["model_id", "topic", "sensitivity", "start_ms", "delay_ms", "assets",
                          "clock", "idle_timeout_ms", "max_fill_points", "model_version",
                          "alerts", "hooks", "declare"])


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(FIELDS, JSON, max_size=5),
       kind=st.sampled_from(["create", "update_model"]))
def test_any_json_parameters_get_a_decision_that_can_be_written_down(
        params: dict[str, Any], kind: str) -> None:
    """Every command gets exactly one result: whatever JSON its parameters hold, ``decide``
    returns (never raises) and its records encode."""
    base = {"model_id": "pumps", "topic": "tele"} if kind == "create" else {}
    d = decide(None if kind == "create" else paused(), cmd(kind, {**base, **params}), CATALOG, NOW)
    dumps(d.result_record())
    if d.state is not None:
        dumps(d.state.to_record())
        VALIDATE_STATUS(d.state.to_record())
