"""The topics one deployment uses, with their final partition counts and configuration."""

from __future__ import annotations

from collections.abc import Iterable

from agents.broker import TopicSpec
from agents.settings import Settings


def registry_topic(settings: Settings) -> str:
    """The model registry: ``<prefix>.models``, compacted, keyed ``model_id/version``."""
    return f"{settings.topics.prefix}.models"


def topic_specs(settings: Settings, telemetry: Iterable[str] = ()) -> list[TopicSpec]:
    """Telemetry (the default topic and any an inference names), anomalies (compacted: a replay
    overwrites by key), dead letters, and the model registry.

    Telemetry, anomalies and dead letters share one partition count: state, input and output
    are co-partitioned by asset. The registry is not keyed by asset: one partition keeps its
    records in one order, and it is small.
    """
    t = settings.topics
    n = settings.partitions
    inputs = sorted({t.telemetry, *settings.extra_topics, *telemetry})
    return [
        *(TopicSpec(name, n) for name in inputs),
        TopicSpec(t.anomalies, n, {"cleanup.policy": "compact"}),
        TopicSpec(t.dead_letter, n),
        TopicSpec(t.late, n),
        TopicSpec(registry_topic(settings), 1, {"cleanup.policy": "compact"}),
        # the control plane: one partition each, so commands apply in one order (docs/control.md)
        TopicSpec(t.control, 1),
        TopicSpec(t.inference_status, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.inference_events, 1),
        TopicSpec(t.inference_stats, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.alerts, n, {"cleanup.policy": "compact"}),
        TopicSpec(t.correlation, n),
        # hooks (issue #5): notifications co-partitioned with the outbox table; configs and
        # failed deliveries are small, one partition each (docs/hooks.md)
        TopicSpec(t.notifications, n),
        TopicSpec(t.hooks, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.hooks_dead_letter, 1),
    ]
