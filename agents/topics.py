"""The topics one deployment uses, with their final partition counts and configuration."""

from __future__ import annotations

from collections.abc import Iterable

from agents.broker import TopicSpec
from agents.settings import Settings


def topic_specs(settings: Settings, telemetry: Iterable[str] = ()) -> list[TopicSpec]:
    """Telemetry (the default topic and any an inference names), anomalies (compacted: a replay
    overwrites by key) and dead letters.

    All share one partition count: state, input and output are co-partitioned by asset.
    """
    t = settings.topics
    n = settings.partitions
    inputs = sorted({t.telemetry, *telemetry})
    return [
        *(TopicSpec(name, n) for name in inputs),
        TopicSpec(t.anomalies, n, {"cleanup.policy": "compact"}),
        TopicSpec(t.dead_letter, n),
    ]
