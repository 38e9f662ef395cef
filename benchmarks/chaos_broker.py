"""Chaos: the broker itself crashes mid-stream and comes back.

``python -m benchmarks.chaos --scenario broker-restart [--restarts 3] [--down 5]``. A broker
node serves a worker under load; at random moments it is killed with SIGKILL, stays down for
``down`` seconds, and is started again on the same data and ports. The node is Apache Kafka
(KRaft, from Maven Central's jars, its log directory on local disk) or the embedded broker on
its ``s3://`` storage against a local S3 server (:mod:`benchmarks.local_s3`; its default
memory storage would lose everything on a restart). The producer keeps
sending (its records wait in its buffer while the broker is away); the worker is supervised
as an operator's init system would: if it exits, another is started (counted). The output is
compared with the pure engine's uninterrupted scoring, as in :mod:`benchmarks.chaos`, with
the same counts and targets.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.apache_kafka import ApacheKafka, kafka_version
from agents.broker import EmbeddedBroker
from agents.connection import KafkaConnection
from agents.worker_process import WorkerProcess
from benchmarks.chaos import ChaosResult, make_rig
from benchmarks.local_s3 import LocalS3


@dataclass
class Node:
    """A broker the run can crash and bring back."""

    name: str
    connection: KafkaConnection
    crash: Callable[[], object]
    #: start it again on the same data and ports
    restart: Callable[[], object]


@contextlib.contextmanager
def apache_kafka_node(jars: Path) -> Iterator[Node]:
    """One Apache Kafka node from its jars; its log directory survives a crash."""
    with ApacheKafka(jars) as broker:
        yield Node(f"Apache Kafka {kafka_version()}", broker.connection(), broker.crash,
                   broker.restart)


@contextlib.contextmanager
def embedded_s3_node(gofakes3: Path) -> Iterator[Node]:
    """The embedded broker (Tansu) on ``s3://`` storage in a local S3 server that outlives it."""
    with (LocalS3(gofakes3) as s3,
          EmbeddedBroker(storage=f"s3://{s3.bucket}/", env=s3.broker_env()) as broker):
        yield Node("the embedded broker (Tansu) on S3 storage (gofakes3)", broker.connection,
                   broker.crash, broker.restart)


@dataclass
class BrokerRestartResult:
    """A chaos result of broker crashes, with how often the worker had to be started again."""

    counts: ChaosResult
    broker: str
    broker_restarts: int
    down_s: float
    worker_restarts: int


def run_broker_restart(node: contextlib.AbstractContextManager[Node], workdir: Path,
                       restarts: int = 1, down_s: float = 5.0, assets: int = 12,
                       points: int = 300, rate: float = 300.0, seed: int = 0,
                       log: Any = print) -> BrokerRestartResult:
    """One run on a node of its own (:func:`apache_kafka_node`; see the module docstring);
    files under ``workdir``."""
    rng = random.Random(seed)
    with node as broker:
        rig = make_rig(broker.connection, workdir, assets, points, seed)
        started = time.monotonic()
        feeder = rig.start_feed(rate)
        workers: list[WorkerProcess] = [rig.worker("worker-0").start()]

        def supervise() -> None:
            """Start another worker if the current one exited."""
            current = workers[-1]
            if current.proc is not None and current.proc.poll() is not None:
                log(f"worker exited with code {current.proc.returncode}: starting another")
                workers.append(rig.worker(f"worker-{len(workers)}").start())

        try:
            workers[0].wait_ready(90)
            for i in range(restarts):
                time.sleep(rng.uniform(1.0, 3.0))  # a random moment under load: the chaos
                broker.crash()
                log(f"broker crashed ({i + 1}/{restarts}) at {time.monotonic() - started:.1f} s")
                time.sleep(down_s)  # the outage's length: the fault being injected
                broker.restart()
                log(f"broker back at {time.monotonic() - started:.1f} s")
                supervise()
            seen = rig.collect(rig.complete, 240, between=supervise)
        finally:
            for w in workers:
                w.stop()
        feeder.join(30)
        return BrokerRestartResult(rig.result(seen, 0, started), broker.name, restarts, down_s,
                                   len(workers) - 1)
