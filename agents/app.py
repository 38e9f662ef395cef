"""The Faust application factory: one place that turns :class:`Settings` into a ``faust.App``."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import faust

from agents.connection import KafkaConnection
from agents.faust_consumer import FetchWaitApp
from agents.settings import Settings
from agents.topics import MAX_RECORD_BYTES
from agents.web_access import access_middleware

MAX_FETCH_BYTES = 16 * 1024 * 1024
MAX_REQUEST_BYTES = MAX_RECORD_BYTES
#: the consumer's fetch wait on the embedded broker, which holds a fetch that long (see
#: :mod:`agents.faust_consumer`): a bound on the latency it adds, ten empty fetches a second idle
EMBEDDED_FETCH_MAX_WAIT_MS = 100


def create_app(settings: Settings, kafka: KafkaConnection) -> faust.App:
    """A fresh Faust app for a worker (or a test), configured from settings.

    The connection's client properties become Faust's credentials, TLS context, client id
    and group timeouts (``KafkaConnection.faust_options``). Two workarounds apply to the
    embedded broker only, unless settings force them (docs/embedded-broker.md):
    ``one_record_per_batch`` (its end-offset answer is wrong after a multi-record produce
    batch, which makes table recovery lose data; it costs a produce request per record) and
    ``fast_group`` (a 2 s session: its join waits half the session timeout; Apache Kafka's
    stock ``group.min.session.timeout.ms`` of 6 s refuses it). The consumer's fetch wait is
    ``fetch_max_wait_ms`` where set, else 100 ms on the embedded broker (it holds a fetch up
    to the wait even when records arrive meanwhile) and Faust's 1,500 ms elsewhere
    (:mod:`agents.faust_consumer`).
    """
    conf: dict[str, Any] = dict(
        store="memory://",
        # Faust makes a table directory even for in-memory stores; not in the working directory
        datadir=_datadir(settings.app_id),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        # larger than the edge's size limit, so an oversize record is fetched and dead-lettered
        # instead of stalling its partition (brokers without KIP-74 never return it otherwise)
        consumer_max_fetch_size=MAX_FETCH_BYTES,
        # a dead letter carries its original whole up to 1 MiB: 1.4 MB of base64 plus fields
        producer_max_request_size=MAX_REQUEST_BYTES,
        stream_recovery_delay=0.0,
        web_enabled=True,
        # Faust binds web_bind (default: every interface); web_host only names the server
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Faust's own views would show every table's contents (per-asset state, the hook
        # outbox) and the partition map to anyone who reaches the port: off
        web_tables_enabled=False,
        web_router_enabled=False,
        # every request passes the access gate: mutating ones need the operator's API token
        web_application_options={"middlewares": [access_middleware(settings.access_policy())]},
    )
    if settings.fast_group if settings.fast_group is not None else kafka.embedded:
        conf.update(
            broker_session_timeout=2.0,
            broker_heartbeat_interval=0.2,
            broker_rebalance_timeout=2.0,
        )
    if one_record_per_batch(settings, kafka):
        conf["producer_max_batch_size"] = 1
    if settings.replication_factor is not None:
        conf["topic_replication_factor"] = settings.replication_factor
    conf.update(kafka.faust_options())  # the user's properties win over the defaults above
    app = FetchWaitApp(settings.app_id, **conf)
    app.fetch_max_wait_ms = (settings.fetch_max_wait_ms if settings.fetch_max_wait_ms is not None
                             else EMBEDDED_FETCH_MAX_WAIT_MS if kafka.embedded else None)
    return app


def session_timeout_ms(app: faust.App) -> int:
    """The consumer-group session the app's consumer asks for."""
    return int(app.conf.broker_session_timeout * 1000)


def one_record_per_batch(settings: Settings, kafka: KafkaConnection) -> bool:
    """Whether producers send one record per batch: as set, else on the embedded broker only."""
    return settings.one_record_per_batch if settings.one_record_per_batch is not None else kafka.embedded


def _datadir(app_id: str) -> Path:
    """Where Faust keeps its (here empty) table directories: a temporary directory of this
    process, removed when it exits (one per app id in a shared directory outlived every worker
    and every ``assetwatch demo``)."""
    path = Path(tempfile.mkdtemp(prefix=f"assetwatch-faust-{_safe(app_id)}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _safe(name: str) -> str:
    """A name fit for a directory name's prefix.

    >>> _safe("demo-1a2b3c"), _safe("../x y")
    ('demo-1a2b3c', '.._x_y')
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]
