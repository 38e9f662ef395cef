"""An inference's settings and their bounds (docs/control.md, "Bounds"), checked once here for
the CLI, the REST API and the control topic."""

from __future__ import annotations

import pytest

from streams.inference import (
    MAX_DELAY_MS,
    InferenceConfig,
    asset_id_problem,
    delay_ms_from_seconds,
    whole_number,
)


@pytest.mark.parametrize("seconds", [float("inf"), float("-inf"), float("1e400"), 1e300,
                                     float("nan"), 1e12, -5.0, MAX_DELAY_MS / 1000 + 1])
def test_a_delay_in_seconds_out_of_bounds_is_refused_in_one_line(seconds: float) -> None:
    with pytest.raises(ValueError, match="data delay offset must be a number of seconds from 0 "
                                         "to 604800, got ") as err:
        delay_ms_from_seconds(seconds)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("seconds", "ms"), [(0.0, 0), (2.0, 2_000), (0.0015, 2), (604_800.0,
                                                                                   MAX_DELAY_MS)])
def test_a_delay_in_bounds_is_kept_in_milliseconds(seconds: float, ms: int) -> None:
    assert delay_ms_from_seconds(seconds) == ms


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (10, 10), (7.0, 7), (2**62, None),
                                                 (1e300, None), (-1, None), (1.5, None),
                                                 (False, None), ("3", None), (None, None)])
def test_whole_numbers_are_ints_in_range_and_nothing_else(value: object,
                                                          expected: int | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=r"^x must be"):
            whole_number(value, "x", 0, 10**6)
    else:
        assert whole_number(value, "x", 0, 10**6) == expected


@pytest.mark.parametrize(("asset_id", "ok"), [("pump-017", True), ("Pumpe Nord 3", True),
                                              ("", False), (" pump", False), ("pump\n", False),
                                              ("p" * 256, True), ("p" * 257, False),
                                              (17, False)])
def test_asset_ids_follow_the_telemetry_schema(asset_id: object, ok: bool) -> None:
    assert (asset_id_problem(asset_id) is None) is ok


def test_a_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match="; ") as err:
        InferenceConfig("x", "m", "t", delay_ms=-1, start_ms=-1, assets=frozenset({""}))
    message = str(err.value)
    assert "data delay offset" in message and "start" in message and "asset id ''" in message


def test_plain_settings_report_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match="; ") as err:
        InferenceConfig.from_dict({"inference_id": "x", "model_id": "m", "topic": "t",
                                   "delay_ms": 10**15, "assets": [""], "sensitivity": "high"})
    assert str(err.value) == (
        "sensitivity must be a whole number, got 'high'; data delay offset (ms, at most 7 days) "
        "must be from 0 to 604800000, got 1000000000000000; asset id '' must be 1-256 characters, "
        "with no control characters and no leading or trailing whitespace")
