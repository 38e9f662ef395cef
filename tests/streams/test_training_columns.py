"""Training from columns in memory (dicts of arrays, data frames) prepares and fits as from a
file of the same data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from streams.training import TrainingError, TrainingSpec, read_csv, table_from_columns, train

T0 = 1_767_225_600_000


def data(n: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    a = rng.normal(size=n)
    b = a + 0.1 * rng.normal(size=n)
    b[[17, n // 3, n // 3 + 1]] = np.nan  # missing values
    return {"timestamp": T0 + np.arange(n) * 1000, "a": a, "b": b}


def as_csv(d: dict[str, np.ndarray]) -> bytes:
    lines = ["timestamp,a,b"] + [
        f"{t},{float(a)!r},{'' if np.isnan(b) else repr(float(b))}"
        for t, a, b in zip(*d.values(), strict=True)]
    return ("\n".join(lines) + "\n").encode()


SPEC = TrainingSpec("m", window_size=8, fill="linear")


def test_a_dict_of_arrays_trains_the_model_its_csv_trains() -> None:
    d = data()
    from_columns = train(table_from_columns(d), SPEC).model
    from_file = train(read_csv(as_csv(d)), SPEC).model
    assert from_columns.to_dict() == from_file.to_dict()


def test_a_pyarrow_table_with_datetime_timestamps_trains_the_same_model() -> None:
    d = data()
    frame = pa.table({"timestamp": pa.array(d["timestamp"].astype("datetime64[ms]")),
                      "a": d["a"], "b": pa.array(d["b"], from_pandas=True)})
    assert train(table_from_columns(frame), SPEC).model.to_dict() == \
        train(table_from_columns(d), SPEC).model.to_dict()


def test_several_assets_and_wrong_columns_say_what_is_wrong() -> None:
    d = data(200)
    fleet = {"ts": np.concatenate([d["timestamp"], d["timestamp"]]),
             "pump": np.array(["p1"] * 200 + ["p2"] * 200),
             "a": np.concatenate([d["a"], d["a"] + 1]), "b": np.concatenate([d["b"], d["b"]])}
    table = table_from_columns(fleet, timestamp_column="ts", asset_column="pump")
    assert train(table, SPEC).quality.assets == 2
    with pytest.raises(TrainingError, match="no timestamp column 'timestamp'"):
        table_from_columns(fleet)
    text = {**data(50), "b": np.array(["x"] * 50, dtype=object)}
    assert table_from_columns(text).non_numeric == {"b": "x"}
