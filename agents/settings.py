"""One frozen settings object: defaults, environment and CLI flags are read here and only here.

>>> s = Settings.from_env({"ASSETWATCH_BROKER": "kafka:9092", "ASSETWATCH_PARTITIONS": "4"})
>>> s.broker, s.partitions, s.topics.telemetry
('kafka:9092', 4, 'assetwatch.telemetry')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from agents.connection import merge_properties, properties_from_env
from streams.access import TOKEN_ENV, TOKEN_FILE_ENV, AccessPolicy, ReadAccess, check_token

#: the event loops a worker can run on (``Settings.event_loop``)
EventLoopName = Literal["uvloop", "asyncio"]

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

    # the control plane (SPEC §5.4; docs/control.md): commands in; states, results, stats out
    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def control_internal(self) -> str:
        """Commands only workers send (``fail``); grant write on it to workers alone."""
        return f"{self.prefix}.control-internal"

    @property
    def inference_status(self) -> str:
        return f"{self.prefix}.inference-status"

    @property
    def inference_events(self) -> str:
        return f"{self.prefix}.inference-events"

    @property
    def inference_stats(self) -> str:
        return f"{self.prefix}.inference-stats"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def correlation(self) -> str:
        """The feed of inference-scope alerts, keyed by inference (streams/correlation.py)."""
        return f"{self.prefix}.alert-correlation"

    # hooks (issue #5): notifications to deliver, hook configs, failed deliveries
    @property
    def notifications(self) -> str:
        return f"{self.prefix}.notifications"

    @property
    def hooks(self) -> str:
        return f"{self.prefix}.hooks"

    @property
    def hooks_dead_letter(self) -> str:
        return f"{self.prefix}.hooks.dead-letter"


@dataclass(frozen=True, slots=True)
class Settings:
    """How a worker (or a CLI command) connects and behaves.

    ``broker`` is ``None`` for the embedded broker the CLI starts itself.
    ``kafka_properties`` are client properties (librdkafka names: SASL, TLS, client.id,
    session.timeout.ms…) for every client of a ``--broker`` cluster (agents/connection.py).
    ``fast_group`` selects short consumer-group timeouts (2 s: a join takes ~1 s instead of
    ~30 s on the embedded broker); ``one_record_per_batch`` produces one record per batch
    (the embedded broker needs it for correct table recovery). ``None`` chooses by the kind
    of broker: on for the embedded one, off for Apache Kafka, whose stock
    ``group.min.session.timeout.ms`` (6 s) refuses a 2 s session.
    ``replication_factor`` and ``min_insync_replicas`` apply to every topic the project
    creates, Faust's changelogs included; ``None`` is the broker's default.
    ``web_host`` is the address the web server binds: loopback unless told otherwise.
    ``api_token`` is the bearer token mutating REST requests need (``None``: they are all
    refused); ``api_reads`` is ``open`` or ``token`` (reads need it too; docs/control.md).
    """

    broker: str | None = None
    kafka_properties: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets
    connect_timeout_s: float = 15.0
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    app_id: str = "assetwatch"
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    models_dir: Path = Path("var/models")
    inferences_file: Path | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    api_token: str | None = field(default=None, repr=False)  # a secret
    api_reads: ReadAccess = "open"
    fast_group: bool | None = None
    one_record_per_batch: bool | None = None
    batch_max_events: int = 1000
    #: a reading stamped more than this after its record reached Kafka is dead-lettered
    max_ahead_ms: int | None = 3_600_000
    #: the worker consumer's fetch wait; None: 100 ms on the embedded broker, else Faust's
    #: 1,500 ms (a real broker answers as soon as records arrive; agents/faust_consumer.py)
    fetch_max_wait_ms: int | None = None
    #: stores of states (with the batches they cover) whose input waits for the broker's
    #: acknowledgement while the next batches are scored (agents/ack_pipeline.py); also the
    #: fetches the consumer may hold ahead of the scoring loop (agents/bulk_intake.py)
    ack_pipeline_depth: int = 4
    #: how often the scoring loop stores the states its batches changed (their records are
    #: committed only once they are stored; 0: after every batch; agents/uncommitted.py)
    snapshot_interval_ms: int = 1_000
    tick_interval_s: float = 0.5
    #: the worker's event loop: ``uvloop`` (libuv, in C; about 15 % more points per second at
    #: one reading per message, docs/benchmarks.md) or ``asyncio`` (the standard library's)
    event_loop: EventLoopName = "uvloop"
    #: telemetry topics served besides the default one and those of declared inferences
    extra_topics: tuple[str, ...] = ()
    #: how often a worker publishes each inference's progress (``inference show``)
    stats_interval_s: float = 2.0
    #: failed batches of one inference before it is moved to SystemPaused
    max_inference_failures: int = 3
    # hook deliveries (issue #5; docs/hooks.md): retry budget, back-off, outbox scan cadence
    hook_max_attempts: int = 24
    hook_base_delay_ms: int = 500
    hook_max_delay_ms: int = 600_000
    hook_tick_interval_s: float = 0.25
    loglevel: str = "warning"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then ``ASSETWATCH_*`` variables, then explicit (CLI) overrides."""
        s = cls()
        get = env.get
        props = properties_from_env(env)
        if props:
            s = replace(s, kafka_properties=props)
        if get(ENV_PREFIX + "REPLICATION_FACTOR"):
            s = replace(s, replication_factor=_positive_int(
                "REPLICATION_FACTOR", str(get(ENV_PREFIX + "REPLICATION_FACTOR"))))
        if get(ENV_PREFIX + "MIN_INSYNC_REPLICAS"):
            s = replace(s, min_insync_replicas=_positive_int(
                "MIN_INSYNC_REPLICAS", str(get(ENV_PREFIX + "MIN_INSYNC_REPLICAS"))))
        if get(ENV_PREFIX + "BATCH_MAX_EVENTS"):  # records the scoring agent takes at once
            s = replace(s, batch_max_events=_positive_int(
                "BATCH_MAX_EVENTS", str(get(ENV_PREFIX + "BATCH_MAX_EVENTS"))))
        if get(ENV_PREFIX + "SNAPSHOT_INTERVAL_MS"):
            s = replace(s, snapshot_interval_ms=int(str(get(ENV_PREFIX + "SNAPSHOT_INTERVAL_MS"))))
        if get(ENV_PREFIX + "FETCH_MAX_WAIT_MS"):
            s = replace(s, fetch_max_wait_ms=_positive_int(
                "FETCH_MAX_WAIT_MS", str(get(ENV_PREFIX + "FETCH_MAX_WAIT_MS"))))
        if get(ENV_PREFIX + "EVENT_LOOP"):
            s = replace(s, event_loop=event_loop_name(str(get(ENV_PREFIX + "EVENT_LOOP"))))
        if get(ENV_PREFIX + "MAX_AHEAD_MS"):  # 0: no limit (an accelerated feed from the future)
            ahead = int(str(get(ENV_PREFIX + "MAX_AHEAD_MS")))
            s = replace(s, max_ahead_ms=ahead if ahead > 0 else None)
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
        if get(ENV_PREFIX + "WEB_HOST"):  # 0.0.0.0 in a container, so Prometheus can scrape it
            s = replace(s, web_host=str(get(ENV_PREFIX + "WEB_HOST")))
        if get(TOKEN_ENV) and get(TOKEN_FILE_ENV):
            raise ValueError(f"set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
        if get(TOKEN_ENV):
            s = replace(s, api_token=check_token(str(get(TOKEN_ENV))))
        if get(TOKEN_FILE_ENV):
            s = replace(s, api_token=read_token_file(Path(str(get(TOKEN_FILE_ENV)))))
        if get(ENV_PREFIX + "API_READS"):  # open (default) | token
            s = replace(s, api_reads=str(get(ENV_PREFIX + "API_READS")))  # type: ignore[arg-type]
        for hook_var in ("HOOK_MAX_ATTEMPTS", "HOOK_BASE_DELAY_MS", "HOOK_MAX_DELAY_MS"):  # issue #5
            if get(ENV_PREFIX + hook_var):
                hook_value: dict[str, Any] = {hook_var.lower(): int(str(get(ENV_PREFIX + hook_var)))}
                s = replace(s, **hook_value)
        given = {k: v for k, v in overrides.items() if v is not None}
        if "kafka_properties" in given:  # the CLI's -X wins over the file and the environment
            given["kafka_properties"] = merge_properties(s.kafka_properties, given["kafka_properties"])
        if "topic_prefix" in given:
            given["topics"] = TopicNames(given.pop("topic_prefix"))
        if "api_token_file" in given:
            given["api_token"] = read_token_file(Path(given.pop("api_token_file")))
        s = replace(s, **given)
        s.access_policy()  # an unusable combination fails here, with its reason
        return s

    def access_policy(self) -> AccessPolicy:
        """Who may use the web port (streams/access.py)."""
        return AccessPolicy(token=self.api_token, reads=self.api_reads)


def read_token_file(path: Path) -> str:
    """The API token kept in ``path`` (surrounding whitespace stripped); ``ValueError`` if unusable."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the API token file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        return check_token(text)
    except ValueError as exc:
        raise ValueError(f"API token file {path}: {exc}") from None


def event_loop_name(text: str) -> EventLoopName:
    """The event loop a worker runs on, checked.

    >>> event_loop_name("asyncio")
    'asyncio'
    >>> event_loop_name("trio")
    Traceback (most recent call last):
    ...
    ValueError: ASSETWATCH_EVENT_LOOP must be uvloop or asyncio, not 'trio'
    """
    if text not in ("uvloop", "asyncio"):
        raise ValueError(f"{ENV_PREFIX}EVENT_LOOP must be uvloop or asyncio, not {text!r}")
    return cast(EventLoopName, text)


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name} must be a whole number, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{ENV_PREFIX}{name} must be at least 1, not {value}")
    return value
