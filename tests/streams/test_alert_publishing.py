"""Alert publishing: per asset, anomalies feed its asset-scope groupers, whose state is
snapshotted and rebuilt; inference-scope configs are not grouped per asset."""

from __future__ import annotations

import numpy as np

from streams.alert_publishing import AlertPublisher
from streams.alerts import AlertConfig
from streams.inference import InferenceConfig
from streams.model import ModelParams, fit_model
from streams.records import Anomaly
from streams.scoring import AssetScorer, Outcome

MODEL = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
                  ModelParams(model_id="m", signals=("v",), window_size=2))


def scorer(*alerts: AlertConfig) -> AssetScorer:
    return AssetScorer(InferenceConfig("inf", "m", "t", alerts=alerts, hooks=("ops",)), MODEL)


def anomaly(ts_ms: int) -> Outcome:
    a = Anomaly("inf", "a", ts_ms, "m", 1, 9.0, 0.99, 70, 0.3, {"v": 9.0})
    return Outcome("scored", ts_ms, 9.0, 0.99, a)


def test_an_anomaly_opens_an_alert_delivered_to_the_inferences_hooks() -> None:
    s = scorer(AlertConfig("high", 0, mode="each"))
    publisher = AlertPublisher()
    publisher.restore("inf/a", s, {})
    (home, alert, hooks), *_ = publisher.publish("inf/a", 3, s, [anomaly(1_000)], 1_000)
    assert (home, alert.alert_config, hooks) == (3, "high", ("ops",))


def test_nothing_finalised_publishes_nothing() -> None:
    s = scorer(AlertConfig("high", 0))
    publisher = AlertPublisher()
    publisher.restore("inf/a", s, {})
    assert publisher.publish("inf/a", 0, s, [], 1_000) == []


def test_groupers_are_rebuilt_from_their_snapshot() -> None:
    s = scorer(AlertConfig("high", 5))
    publisher = AlertPublisher()
    publisher.restore("inf/a", s, {})
    publisher.publish("inf/a", 0, s, [anomaly(1_000)], 1_000)
    snap = publisher.snapshot("inf/a")
    again = AlertPublisher()
    assert snap is not None
    again.restore("inf/a", s, snap)
    assert again.snapshot("inf/a") == snap


def test_inference_scope_alerts_have_no_per_asset_grouper() -> None:
    publisher = AlertPublisher()
    publisher.restore("inf/a", scorer(AlertConfig("fleet", 2, scope="inference")), {})
    assert publisher.snapshot("inf/a") is None
