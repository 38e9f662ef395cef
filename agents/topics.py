"""The topics one deployment uses, with their final partition counts and configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from agents.broker import TopicSpec
from agents.settings import Settings

#: the largest record a topic the project creates for records that may be large takes
#: (``max.message.bytes``): above the edge's size limit (1 MiB), so an oversize reading reaches
#: the worker and is dead-lettered with its reason instead of being refused to its producer
#: by a stock broker (1 MiB); and a dead letter carries a 1 MiB original as base64 (1.4 MB)
MAX_RECORD_BYTES = 4 * 1024 * 1024
LARGE_RECORDS = {"max.message.bytes": str(MAX_RECORD_BYTES)}


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
    return with_durability(settings, [
        *(TopicSpec(name, n, dict(LARGE_RECORDS)) for name in inputs),
        TopicSpec(t.anomalies, n, {"cleanup.policy": "compact"}),
        TopicSpec(t.dead_letter, n, dict(LARGE_RECORDS)),
        TopicSpec(t.late, n),
        TopicSpec(registry_topic(settings), 1, {"cleanup.policy": "compact"}),
        # the control plane: one partition each, so commands apply in one order (docs/control.md)
        TopicSpec(t.control, 1),
        TopicSpec(t.control_internal, 1),
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
    ])


def faust_topic_specs(settings: Settings, app: Any) -> list[TopicSpec]:
    """The topics Faust would otherwise create itself — each table's changelog (compacted)
    and its partition assignor's leader topic — with the deployment's replication factor and
    ``min.insync.replicas``. Created before the app starts, so Faust finds them and creates
    nothing (it would use ``topic_replication_factor``, 1 by default, on any cluster)."""
    specs = [TopicSpec(f"{app.conf.id}-__assignor-__leader", 1)]
    for table in app.tables.values():
        topic = table.changelog_topic
        specs.append(TopicSpec(topic.get_topic_name(), topic.partitions or settings.partitions,
                               {"cleanup.policy": "compact"}))
    return with_durability(settings, specs)


def with_durability(settings: Settings, specs: list[TopicSpec]) -> list[TopicSpec]:
    """The specs with the settings' replication factor and ``min.insync.replicas`` (the
    broker's defaults where unset).

    >>> s = Settings(replication_factor=3, min_insync_replicas=2)
    >>> with_durability(s, [TopicSpec("a", 4)])
    [TopicSpec(name='a', partitions=4, config={'min.insync.replicas': '2'}, replication=3)]
    """
    extra = ({} if settings.min_insync_replicas is None
             else {"min.insync.replicas": str(settings.min_insync_replicas)})
    replication = -1 if settings.replication_factor is None else settings.replication_factor
    return [replace(s, config={**s.config, **extra}, replication=replication) for s in specs]
