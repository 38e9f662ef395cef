"""The state store: restore on first use, epochs, and republish of anomalies not proved
durable (kill -9 between the snapshot and the anomaly's acknowledgement)."""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.alert_publishing import AlertPublisher
from streams.checkpoint import checkpoint_key
from streams.inference import InferenceConfig
from streams.model import ModelParams, fit_model
from streams.records import Anomaly, Reading
from streams.scoring import AssetScorer
from streams.state_store import REPUBLISH_WINDOW_MS, StateStore

MODEL = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
                  ModelParams(model_id="m", signals=("v",), window_size=2))


def scorer(epoch: int = 0, **cfg: Any) -> AssetScorer:
    return AssetScorer(InferenceConfig("inf", "m", "t", **cfg), MODEL, epoch)


def anomaly(ts_ms: int) -> Anomaly:
    return Anomaly("inf", "a", ts_ms, "m", 1, 9.0, 0.99, 70, 0.3, {"v": 9.0})


def store_over(table: dict[str, Any]) -> StateStore:
    return StateStore(table.get, AlertPublisher())


def test_a_state_is_restored_from_its_snapshot_not_begun_afresh() -> None:
    table: dict[str, Any] = {}
    s = scorer()
    first = store_over(table)
    first.get("inf/a", 0, s).watermark.add(Reading("a", 5_000, {"v": 1.0}))
    table["inf/a"] = first.snapshot("inf/a")
    again = store_over(table).get("inf/a", 0, s)
    assert [r.ts_ms for r in again.watermark.pending()] == [5_000]


def test_another_epochs_state_is_not_restored() -> None:
    table: dict[str, Any] = {}
    first = store_over(table)
    first.get("inf/a", 0, scorer(epoch=1)).watermark.add(Reading("a", 5_000, {"v": 1.0}))
    table["inf/a"] = first.snapshot("inf/a")
    assert store_over(table).get("inf/a", 0, scorer(epoch=2)).watermark.pending() == []


def test_anomalies_not_proved_durable_are_published_again_on_restore() -> None:
    table: dict[str, Any] = {checkpoint_key("t", 0): 11}  # the checkpoint is past offset 10
    s = scorer()
    first = store_over(table)
    first.get("inf/a", 0, s)
    first.published("inf/a", anomaly(1), ["t", 0, 10])   # its batch was acknowledged
    first.published("inf/a", anomaly(2), ["t", 0, 11])   # not yet
    first.published("inf/a", anomaly(3), None)           # a tick's, never acknowledged
    table["inf/a"] = first.snapshot("inf/a")
    again = store_over(table)
    again.get("inf/a", 0, s)
    assert [a.ts_ms for _, a in again.take_republish()] == [2, 3]
    assert again.take_republish() == []  # handed out once


def test_an_acknowledged_ticks_anomaly_is_durable_in_the_snapshot_it_returns() -> None:
    table: dict[str, Any] = {}
    s = scorer()
    first = store_over(table)
    first.get("inf/a", 0, s)
    first.published("inf/a", anomaly(3), None)
    (key, (part, snap)), = first.acknowledge([anomaly(3)]).items()
    table[key] = snap
    again = store_over(table)
    again.get(key, part, s)
    assert again.take_republish() == []


def test_anomalies_older_than_the_republish_window_leave_the_snapshot() -> None:
    store = store_over({})
    store.get("inf/a", 0, scorer())
    store.wall.ms = 1_000
    store.published("inf/a", anomaly(1), None)
    store.wall.ms = 1_000 + REPUBLISH_WINDOW_MS + 1
    assert not store.snapshot("inf/a").get("recent_anomalies")


def test_an_event_clock_state_carries_its_clock_and_forget_drops_everything_in_memory() -> None:
    store = store_over({})
    store.get("inf/a", 0, scorer(clock="event")).watermark.add(Reading("a", 5_000, {"v": 1.0}))
    store.event_clocks["inf/a"].observe(5_000)
    assert store.snapshot("inf/a")["event_clock"]["high_ms"] == 5_000
    store.forget("inf/a")
    assert "inf/a" not in store.states and "inf/a" not in store.event_clocks
