"""Alert publishing: each asset's alert groupers, fed the anomalies its slots produce.

An inference's asset-scope alert configs (SPEC §7) each get one
:class:`streams.alerts.AlertGrouper` per asset; inference-scope ones are grouped across
assets by :mod:`streams.correlation` instead. Groups outlive an inference's epoch: a group
open when the inference was paused resolves with the points that come after, so groupers
are rebuilt from the stored snapshot of any epoch.

>>> import numpy as np
>>> from streams.alerts import AlertConfig
>>> from streams.inference import InferenceConfig
>>> from streams.model import fit_model, ModelParams
>>> from streams.scoring import AssetScorer
>>> m = fit_model(np.zeros((50, 1)) + np.arange(50)[:, None] % 3,
...               ModelParams(model_id="m", signals=("v",), window_size=2))
>>> inference = InferenceConfig("inf", "m", "t", alerts=(AlertConfig("high", 2),))
>>> publisher = AlertPublisher()
>>> publisher.restore("inf/a", AssetScorer(inference, m), alert_states={})
>>> publisher.publish("inf/a", 0, AssetScorer(inference, m), [], watermark_ms=None)
[]
>>> sorted(publisher.snapshot("inf/a"))
['high']
>>> publisher.forget("inf/a"); publisher.snapshot("inf/a") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.alerts import Alert, AlertGrouper, AlertGrouperConfig
from streams.scoring import AssetScorer, Outcome

#: (home partition, alert record, the hooks it is delivered to)
PublishedAlert = tuple[int, Alert, tuple[str, ...]]


class AlertPublisher:
    """The alert groupers of every asset state held, by state key."""

    __slots__ = ("_groupers",)

    def __init__(self) -> None:
        self._groupers: dict[str, list[AlertGrouper]] = {}

    def restore(self, key: str, scorer: AssetScorer, alert_states: Mapping[str, Any]) -> None:
        """(Re)build the asset's groupers from their stored states (``{}``: none stored)."""
        self._groupers[key] = [
            AlertGrouperConfig(scorer.inference.inference_id, scorer.model.interval_ms, cfg)
            .build(alert_states.get(cfg.name)) for cfg in scorer.inference.alerts
            if cfg.scope == "asset"]  # inference scope: streams/correlation.py

    def publish(self, key: str, home: int, scorer: AssetScorer, outcomes: Sequence[Outcome],
                watermark_ms: int | None) -> list[PublishedAlert]:
        """The alert records that finalising ``outcomes`` causes (none if nothing finalised)."""
        groupers = self._groupers.get(key, ())
        if not groupers or not outcomes:
            return []
        anomalies = [o.anomaly for o in outcomes if o.anomaly is not None]
        out: list[PublishedAlert] = []
        for grouper in groupers:
            alerts = grouper.add_all(anomalies)
            if watermark_ms is not None:
                alerts += grouper.advance(watermark_ms)
            out += [(home, a, scorer.inference.hooks) for a in alerts]
        return out

    def snapshot(self, key: str) -> dict[str, Any] | None:
        """The groupers' states by alert name, for the asset's snapshot; None without any."""
        groupers = self._groupers.get(key)
        if not groupers:
            return None
        return {g.config.alert.name: g.snapshot() for g in groupers}

    def forget(self, key: str) -> None:
        self._groupers.pop(key, None)
