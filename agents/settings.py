"""One frozen settings object: defaults, environment and CLI flags are read here and only here.

>>> s = Settings.from_env({"ASSETWATCH_BROKER": "kafka:9092", "ASSETWATCH_PARTITIONS": "4"})
>>> s.broker, s.partitions, s.topics.telemetry
('kafka:9092', 4, 'assetwatch.telemetry')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "ASSETWATCH_"


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Names of the topics one deployment uses; a prefix keeps deployments (and tests) apart."""

    prefix: str = "assetwatch"

    @property
    def telemetry(self) -> str:
        return f"{self.prefix}.telemetry"

    @property
    def anomalies(self) -> str:
        return f"{self.prefix}.anomalies"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def late(self) -> str:
        return f"{self.prefix}.late"


@dataclass(frozen=True, slots=True)
class Settings:
    """How a worker (or a CLI command) connects and behaves.

    ``broker`` is ``None`` for the embedded broker the CLI starts itself.
    ``fast_group`` selects short consumer-group timeouts (seconds to join instead of ~30 s);
    right for the embedded broker, tests and demos, and harmless on small real clusters.
    """

    broker: str | None = None
    app_id: str = "assetwatch"
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    models_dir: Path = Path("var/models")
    inferences_file: Path | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    fast_group: bool = True
    one_record_per_batch: bool = True
    batch_max_events: int = 1000
    batch_within_s: float = 0.05
    tick_interval_s: float = 0.5
    loglevel: str = "warning"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then ``ASSETWATCH_*`` variables, then explicit (CLI) overrides."""
        s = cls()
        get = env.get
        if get(ENV_PREFIX + "BROKER"):
            s = replace(s, broker=get(ENV_PREFIX + "BROKER"))
        if get(ENV_PREFIX + "APP_ID"):
            s = replace(s, app_id=str(get(ENV_PREFIX + "APP_ID")))
        if get(ENV_PREFIX + "TOPIC_PREFIX"):
            s = replace(s, topics=TopicNames(str(get(ENV_PREFIX + "TOPIC_PREFIX"))))
        if get(ENV_PREFIX + "PARTITIONS"):
            s = replace(s, partitions=int(str(get(ENV_PREFIX + "PARTITIONS"))))
        if get(ENV_PREFIX + "MODELS_DIR"):
            s = replace(s, models_dir=Path(str(get(ENV_PREFIX + "MODELS_DIR"))))
        if get(ENV_PREFIX + "WEB_PORT"):
            s = replace(s, web_port=int(str(get(ENV_PREFIX + "WEB_PORT"))))
        given = {k: v for k, v in overrides.items() if v is not None}
        if "topic_prefix" in given:
            given["topics"] = TopicNames(given.pop("topic_prefix"))
        return replace(s, **given)
