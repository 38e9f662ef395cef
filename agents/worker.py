"""Build and run a worker: inferences + models → engine → Faust app → Faust worker."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from functools import partial
from pathlib import Path
from typing import Any, cast

import faust
import orjson
from faust.worker import Worker

from agents.app import create_app, session_timeout_ms
from agents.broker import check_session_timeout, ensure_topics
from agents.connection import KafkaConnection
from agents.control_api import register_control_api
from agents.controller import StoreCatalog, decode_state, register_controller
from agents.correlation_agent import register_correlation_agent
from agents.delivery_agent import register_delivery_agent
from agents.detect import register_detect_api
from agents.health import register_health_views, worker_readiness
from agents.history import read_offsets
from agents.hook_store import HookCache
from agents.inference_sync import InferenceSync
from agents.jobs_api import register_job_runner, register_jobs_api
from agents.kafka_io import make_producer
from agents.model_store import ModelStore, ModelStoreError
from agents.openapi import register_openapi
from agents.replay_desk import ReplayDesk
from agents.scoring_agent import PipelineStats, register_scoring_agent, wall_ms
from agents.settings import EventLoopName, Settings
from agents.topic_view import TopicView
from agents.topics import faust_topic_specs, topic_specs
from streams.codec import dumps, loads
from streams.control import Command, InferenceState
from streams.decode import DecodeLimits
from streams.engine import Engine
from streams.inference import InferenceConfig

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The worker's configuration is unusable; the message says why."""


def load_inferences(path: Path) -> list[InferenceConfig]:
    """Read a JSON file holding one inference object or a list of them."""
    try:
        raw = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"inference file not found: {path}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"inference file {path} is not JSON: {exc}") from exc
    items = raw if isinstance(raw, list) else [raw]
    try:
        configs = [InferenceConfig.from_dict(d) for d in items]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"inference file {path}: {exc}") from exc
    ids = [c.inference_id for c in configs]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"inference file {path}: duplicate inference ids")
    return configs


def check_declared(settings: Settings, inferences: list[InferenceConfig]) -> None:
    """A declaration file naming a model the store cannot load fails the worker's start."""
    store = ModelStore(settings.models_dir)
    for cfg in inferences:
        try:
            store.load(cfg.model_id, cfg.model_version)
        except ModelStoreError as exc:
            raise ConfigError(f"inference {cfg.inference_id!r}: {exc}") from exc


def declare(kafka: KafkaConnection, settings: Settings, inferences: list[InferenceConfig]) -> None:
    """Send a ``create`` with ``declare`` for each inference of the file: the controller accepts
    it once and, while it is unchanged, again on every start (docs/control.md)."""
    if not inferences:
        return
    producer = make_producer(kafka)
    for cfg in inferences:
        params = {**cfg.to_dict(), "declare": True}
        if cfg.clock == "wall" and cfg.start_ms == 0:
            # no start in the file: from now on (a wall-clock start cannot be in the past)
            del params["start_ms"]
        cmd = Command(f"declare/{cfg.inference_id}/{uuid.uuid4().hex[:12]}", "create",
                      cfg.inference_id, params, wall_ms(), "worker-declaration")
        producer.produce(settings.topics.control, key=cfg.inference_id.encode(),
                         value=dumps(cmd.to_record()))
    if producer.flush(30) != 0:
        raise ConfigError("could not send the declared inferences to the control topic")


def build_worker_app(settings: Settings, kafka: KafkaConnection) -> tuple[faust.App, PipelineStats]:
    """The whole worker: scoring agent, controller, inference sync; topics created first."""
    declared = load_inferences(settings.inferences_file) if settings.inferences_file else []
    check_declared(settings, declared)
    served = {settings.topics.telemetry, *settings.extra_topics, *(c.topic for c in declared)}
    engine = Engine([], load=lambda key: None, partitions=settings.partitions, topics=served,
                    limits=DecodeLimits(max_ahead_ms=settings.max_ahead_ms))
    ensure_topics(kafka, topic_specs(settings, engine.topics))
    app = create_app(settings, kafka)
    stats = PipelineStats()
    handles = register_scoring_agent(app, settings, engine, stats,
                                     read_offsets=partial(read_offsets, kafka))
    hooks = HookCache(kafka, settings)
    register_delivery_agent(app, settings, hooks, stats.registry,
                            read_offsets=partial(read_offsets, kafka))
    register_health_views(app, worker_readiness(app, stats.ready_checks))
    store = ModelStore(settings.models_dir)
    catalog = StoreCatalog(store, engine.served, engine.signals_seen, hooks.names,
                           lambda: hooks.ready)
    stats_view: TopicView[dict[str, Any]] = TopicView(kafka, settings.topics.inference_stats,
                                                      _stats_record)
    desk = ReplayDesk(kafka, settings.topics.anomalies, stats_view.items, engine.scorer, wall_ms)
    topics = register_controller(app, settings, catalog, wall_ms, desk, handles.metrics)
    view: TopicView[InferenceState] = TopicView(kafka, settings.topics.inference_status,
                                                decode_state)
    sync = InferenceSync(
        settings=settings, engine=engine, store=store, view=view, kafka=kafka,
        publish=handles.publish, table=handles.table, topics=topics, wall_ms=wall_ms,
        recovered=lambda: cast(Any, app.tables).recovery.completed.is_set(),
        assigned=lambda: set(stats.assigned),
        declared=frozenset(c.inference_id for c in declared),
        worker_id=f"{socket.gethostname()}:{settings.web_port}",
        metrics=handles.metrics, unacknowledged=handles.unacknowledged,
    )
    register_control_api(app, settings, kafka, view)
    register_detect_api(app, store)  # batch detection (issue 15)
    register_openapi(app)
    runner = register_job_runner(app, settings, kafka, store, f"{socket.gethostname()}:{settings.web_port}",
                                 stats.registry)
    register_jobs_api(app, settings, kafka, runner)
    stats.listeners.append(sync.observe)
    stats.ready_checks.append(lambda: sync.ready)
    stats.scoring_checks.append(lambda: sync.applied)
    register_correlation_agent(app, settings, engine, handles.publish, lambda: sync.applied,
                               read_offsets=partial(read_offsets, kafka))

    @app.task
    async def start_view() -> None:
        view.start()
        stats_view.start()
        await asyncio.get_running_loop().run_in_executor(None, declare, kafka, settings, declared)

    @app.timer(0.25)
    async def follow_control() -> None:
        sync.step()

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        sync.on_assigned({tp.partition for tp in assigned if tp.topic in engine.topics})

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        sync.on_revoked({tp.partition for tp in revoked if tp.topic in engine.topics})

    cast(Any, app.on_partitions_assigned).connect(on_assigned)
    cast(Any, app.on_partitions_revoked).connect(on_revoked)
    # Faust's own topics (changelogs, the assignor's) with the deployment's replication
    ensure_topics(kafka, faust_topic_specs(settings, app))
    check_session_timeout(kafka, session_timeout_ms(app))
    return app, stats


def _stats_record(value: bytes) -> dict[str, Any]:
    """A progress record of the stats topic (a ``ValueError`` skips anything else)."""
    record = loads(value)
    if not isinstance(record, dict):
        raise ValueError("not a progress record")
    return record


def faust_worker(app: faust.App, loglevel: str) -> Worker:
    """A Faust worker without its terminal spinner.

    Faust's spinner sets the root logger to DEBUG (the spinner turns on every record), so
    every ``log.debug`` of aiokafka and Faust on the send path built a record that the
    handlers then dropped: 6 % of a worker's CPU at one reading per message (py-spy). The
    root logger stays at ``loglevel``.
    """
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


def use_event_loop(name: EventLoopName) -> None:
    """Make ``name`` the event loop of what this process runs next (before the app exists:
    Faust and aiokafka take the loop the policy gives). uvloop (libuv, in C) runs the worker's
    many small callbacks, futures and socket events for less CPU than asyncio's own loop
    (docs/benchmarks.md); where it is not installed the standard loop stays.

    >>> use_event_loop("asyncio"); type(asyncio.get_event_loop_policy()).__module__
    'asyncio.unix_events'
    """
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not on this platform (Windows): the standard loop
            log.warning("uvloop is not installed; the worker runs on asyncio's event loop")
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())


def run_worker(settings: Settings, kafka: KafkaConnection) -> None:
    """Run a worker in this process until SIGINT/SIGTERM (graceful: state flushed, offsets committed)."""
    use_event_loop(settings.event_loop)
    app, _ = build_worker_app(settings, kafka)
    faust_worker(app, settings.loglevel).execute_from_commandline()
