"""The control plane's state machine (SPEC §5.1 scheduling rules, §5.4 control and status).

Each test is named after the rule it checks.
"""

from __future__ import annotations

from typing import Any

import pytest

import schemas
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
    ({"delay_ms": -1}, "data delay offset must be ≥ 0"),
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
    ("Active", "replay", False, "Active"),
])
def test_status_moves(start: str, command: str, accepted: bool, status_after: str) -> None:
    states = {"Active": active(), "UserPaused": paused(),
              "SystemPaused": decide(active(), cmd("fail", {"error": "boom"}), CATALOG, NOW).state}
    before = states[start]
    assert before is not None
    d = decide(before, cmd(command), CATALOG, NOW + 5_000)
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
    failed = decide(active(), cmd("fail", {"error": "model artifact hash mismatch"}), CATALOG, NOW)
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
