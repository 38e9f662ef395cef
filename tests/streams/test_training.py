"""Training from files: parsing, re-sampling and fill, the failures, the fit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from streams.simulate import SIGNALS, pump_series
from streams.training import (
    Table,
    TimeRange,
    TrainingError,
    TrainingSpec,
    detect_delimiter,
    parse_ts,
    prepare,
    read_csv,
    read_json,
    read_table,
    train,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SKAB = Path("/work/shared/data/skab")


def pump_csv(points: int = 400, delimiter: str = ",", seed: int = 0, step_ms: int = 1000) -> bytes:
    rows = pump_series(points, np.random.default_rng(seed))
    lines = [delimiter.join(("timestamp", *SIGNALS))]
    lines += [delimiter.join((str(T0 + i * step_ms), *(f"{v:.5f}" for v in r))) for i, r in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode()


def table(csv_text: str) -> Table:
    return read_csv(csv_text.encode())


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (0, 0),
        (T0, T0),
        (1.6, 2),
        ("1767225600000", T0),
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2026-01-01 00:00:00", T0),  # no zone: UTC
        ("2026-01-01T00:00:00.250Z", T0 + 250),
        (" 2026-01-01T00:00:01Z ", T0 + 1000),
    ],
)
def test_parse_ts(value: object, ms: int) -> None:
    assert parse_ts(value) == ms


@pytest.mark.parametrize("value", ["", "soon", "2026-13-01", True, math.nan])
def test_parse_ts_refuses(value: object) -> None:
    with pytest.raises(TrainingError, match="timestamp"):
        parse_ts(value)


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [("ts,a,b", ","), ("datetime;a;b", ";"), ("ts\ta\tb", "\t"), ("ts|a", "|"), ("ts", ","),
     ("ts;a,b;c", ";")],
)
def test_detect_delimiter(header: str, delimiter: str) -> None:
    assert detect_delimiter(header) == delimiter


def test_semicolons_naive_times_and_a_bom_as_skab_writes_them() -> None:
    t = read_csv("\ufeffdatetime;a;b\n2020-03-09 10:14:33;1,5;2\n2020-03-09 10:14:34;2;3\n".encode())
    assert t.timestamp_column == "datetime" and t.columns == ("a", "b")
    assert t.ts_ms.tolist() == [1583748873000, 1583748874000]
    assert dict(t.non_numeric) == {"a": "row 1: '1,5'"}


def test_timestamp_column_by_name_else_first() -> None:
    assert read_csv(b"x,when\n1,0\n").timestamp_column == "x"
    assert read_csv(b"x,Time\n1,0\n").timestamp_column == "Time"
    assert read_csv(b"x,when\n1,5\n", timestamp_column="when").ts_ms.tolist() == [5]
    with pytest.raises(TrainingError, match="no timestamp column 'zz'"):
        read_csv(b"x,when\n1,5\n", timestamp_column="zz")


def test_missing_tokens_are_nan_and_short_rows_padded() -> None:
    t = table("ts,a,b\n0,,NaN\n1,null,inf\n2,3\n")
    assert np.isnan(t.values).sum() == 5 and t.values[2, 0] == 3.0 and not t.non_numeric


def test_a_row_with_too_many_fields_is_refused() -> None:
    with pytest.raises(TrainingError, match="row 2 has 4 fields, the header has 3"):
        table("ts,a,b\n0,1,2\n1,2,3,4\n")


def test_chunked_reading_gives_the_same_table_and_reports_progress(tmp_path: Path) -> None:
    body = pump_csv(500)
    path = tmp_path / "pump.csv"
    path.write_bytes(body)
    seen: list[int] = []
    small = read_csv(path, chunk_rows=7, on_progress=seen.append)
    whole = read_csv(body)
    assert np.array_equal(small.values, whole.values) and np.array_equal(small.ts_ms, whole.ts_ms)
    assert seen == sorted(seen) and seen[-1] == len(body) and len(seen) > 50


def test_json_form() -> None:
    doc = {"signalNames": ["a", "b"],
           "data": [{"timestamp": "2026-01-01T00:00:00Z", "values": [1, None]},
                    {"timestamp": T0 + 1000, "values": [2.5, "x"]}]}
    t = read_json(orjson.dumps(doc))
    assert t.ts_ms.tolist() == [T0, T0 + 1000] and t.values[1, 0] == 2.5
    assert dict(t.non_numeric) == {"b": "data[1]: 'x'"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty file"),
        (b"[]", "signalNames"),
        (b'{"signalNames": ["a"], "data": [{"timestamp": 0, "values": [1, 2]}]}', "2 values for 1"),
        (b'{"signalNames": ["a"], "data": [{"values": [1]}]}', "timestamp and a values list"),
        (b"{nope", "not JSON"),
    ],
)
def test_bad_json_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(TrainingError, match=reason):
        read_json(body)


def test_parquet_is_refused_with_a_way_out(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="convert the file to CSV"):
        read_table(tmp_path / "data.parquet")


GAP = "ts,v\n0,1\n1000,\n3000,4\n4000,5\n"  # 1000 ms empty, 2000 ms absent


@pytest.mark.parametrize(
    ("fill", "values", "filled"),
    [
        ("linear", [1, 2, 3, 4, 5], 2),
        ("previous", [1, 1, 1, 4, 5], 2),
        ("zero", [1, 0, 0, 4, 5], 2),
        ("none", [1, 4, 5], 0),
    ],
)
def test_fill_methods(fill: str, values: list[float], filled: int) -> None:
    p = prepare(table(GAP), TrainingSpec("m", fill=fill, window_size=1))
    assert p.rows[:, 0].tolist() == values and p.interval_ms == 1000
    q = p.quality.signals[0]
    assert (q.slots, q.missing, q.filled) == (5, 2, filled)
    assert p.quality.dropped == 5 - len(values)


def test_slots_a_method_cannot_fill_are_dropped() -> None:
    p = prepare(table("ts,a,b\n0,,1\n1,,2\n2,3,3\n3,4,4\n4,5,5\n"), TrainingSpec("m", window_size=1))
    assert p.rows.tolist() == [[3, 3], [4, 4], [5, 5]] and p.quality.dropped == 2


def test_interval_default_is_the_median_step_and_can_be_given() -> None:
    text = "ts,v\n" + "".join(f"{t},{i}\n" for i, t in enumerate([0, 10, 20, 30, 45, 50, 60, 70]))
    assert prepare(table(text), TrainingSpec("m", window_size=1)).interval_ms == 10
    p = prepare(table(text), TrainingSpec("m", window_size=1, interval_ms=20))
    assert p.interval_ms == 20 and p.quality.slots == 5


def test_duplicates_and_out_of_order_rows_are_sorted_last_wins_and_reported() -> None:
    p = prepare(table("ts,v\n0,1\n2000,3\n1000,2\n1000,9\n3000,4\n"), TrainingSpec("m", window_size=1))
    assert p.rows[:, 0].tolist() == [1, 9, 3, 4]
    assert (p.quality.duplicate_timestamps, p.quality.non_increasing_timestamps) == (1, 2)


def test_training_ranges_are_half_open_and_filled_apart() -> None:
    text = "ts,v\n" + "".join(f"{t * 1000},{t}\n" for t in range(20))
    spec = TrainingSpec("m", window_size=1, ranges=(TimeRange(12_000, 15_000), TimeRange(2_000, 5_000)))
    p = prepare(table(text), spec)
    assert p.rows[:, 0].tolist() == [2, 3, 4, 12, 13, 14] and p.quality.slots == 6


def test_a_tiny_interval_is_refused_not_allocated() -> None:
    with pytest.raises(TrainingError, match="choose a larger --interval-ms"):
        prepare(table("ts,v\n0,1\n1000000000,2\n"), TrainingSpec("m", window_size=1, interval_ms=1))


@pytest.mark.parametrize(
    ("text", "spec", "reason"),
    [
        ("", TrainingSpec("m"), "empty file"),
        ("ts,a\n", TrainingSpec("m"), "empty file: no data rows"),
        ("ts,a\n0,1\n", TrainingSpec("m", signals=("b",)), "unknown signal 'b'"),
        ("ts,a,s\n0,1,x\n", TrainingSpec("m", signals=("a", "s")), "signal 's' is not numeric"),
        ("ts,s\n0,x\n1,y\n", TrainingSpec("m"), "no numeric signals"),
        ("ts\n0\n1\n", TrainingSpec("m"), "no numeric signals"),
        ("ts,a,b\n0,1,\n1,2,\n", TrainingSpec("m"), "signal 'b' has no values"),
        ("ts,a\n0,1\n1,2\n2,3\n", TrainingSpec("m", window_size=4), "too few points for the window"),
        ("ts,a\n0,1\n0,2\n", TrainingSpec("m"), "too few points for the window"),
        ("ts,a\n0,1\n1,2\n", TrainingSpec("m", ranges=(TimeRange(5, 9),)), "no rows in the training range"),
        ("ts,a\n" + "".join(f"{i},{i % 3}\n" for i in range(6)),
         TrainingSpec("m", window_size=4, target_far=0.01), "held out"),
        ("ts,a\nyesterday,1\n", TrainingSpec("m"), "row 1: timestamp 'yesterday'"),
    ],
)
def test_data_that_cannot_make_a_model_fails_with_a_reason(
    text: str, spec: TrainingSpec, reason: str
) -> None:
    with pytest.raises(TrainingError, match=reason) as info:
        train(read_csv(text.encode()), spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"name": "../evil"}, "model name"),
        ({"fill": "cubic"}, "unknown fill method"),
        ({"algorithm": "magic"}, "unknown algorithm"),
        ({"window_size": 0}, "window"),
        ({"interval_ms": 0}, "data interval"),
        ({"target_far": 1.5}, "target false-alarm"),
        ({"signals": ("a", "a")}, "named twice"),
    ],
)
def test_spec_refuses_bad_parameters(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"name": "m", **kwargs}
    with pytest.raises(TrainingError, match=reason):
        TrainingSpec(**args)  # type: ignore[arg-type]


def test_spec_round_trip() -> None:
    spec = TrainingSpec("m", signals=("a",), interval_ms=5, fill="zero", ranges=(TimeRange(0, 9),),
                        target_far=0.02, timestamp_column="t", version=3)
    assert TrainingSpec.from_dict(spec.to_dict()) == spec


def test_multivariate_training_on_generated_pumps() -> None:
    result = train(read_csv(pump_csv(400)), TrainingSpec("pump", window_size=8))
    m = result.model
    assert m.signals == SIGNALS and m.detector.kind == "mahalanobis" and m.interval_ms == 1000
    assert result.training_points == 400 and len(result.training_far) == 100
    assert result.training_far == tuple(sorted(result.training_far))  # monotone in sensitivity
    assert result.calibration_summary()["expected_far_at_default"] == result.expected_far(70)


def test_univariate_training_picks_zscore_and_excluded_columns_stay_out() -> None:
    result = train(read_csv(pump_csv(200)), TrainingSpec("one", signals=("temp",), window_size=8))
    assert result.model.signals == ("temp",) and result.model.detector.kind == "zscore"
    result = train(read_csv(pump_csv(200)), TrainingSpec("x", exclude=("vib", "temp"), window_size=8))
    assert result.model.signals == ("current", "pressure")


def test_target_far_reports_a_sensitivity_and_the_rate_achieved() -> None:
    result = train(read_csv(pump_csv(600, delimiter=";")), TrainingSpec("p", target_far=0.02))
    m = result.model
    assert m.sensitivity is not None and 1 <= m.sensitivity <= 100
    assert m.heldout_far is not None and m.heldout_far <= 0.02


def test_skab_file_trains_like_generated_data() -> None:
    """The same as the generated-data tests, on one SKAB file read where it lies."""
    path = SKAB / "valve1" / "1.csv"
    if not path.exists():
        pytest.skip("SKAB data not present at /work/shared/data/skab")
    result = train(read_table(path), TrainingSpec("skab", exclude=("anomaly", "changepoint")))
    assert len(result.model.signals) == 8 and result.quality.interval_ms == 1000
    assert result.model.detector.kind == "mahalanobis"
