"""Apache Kafka (KRaft, one node: broker and controller) from Maven Central's jars.

The test suite's Apache Kafka tier, the benchmark's ``--apache-kafka`` and
``assetwatch broker --apache-kafka`` run the real broker this way on a machine with Java ≥ 17
and Maven, without Docker (docs/apache-kafka.md):

1. :func:`kafka_jars` resolves ``deploy/kafka/pom.xml`` (``org.apache.kafka:kafka_2.13`` and
   its dependencies) once into a cache directory with ``mvn dependency:copy-dependencies``;
2. :class:`ApacheKafka` writes ``server.properties`` — ``deploy/kafka/server.properties``, the
   file compose mounts, plus this run's listeners on free 127.0.0.1 ports — formats a log
   directory in a temporary directory (with SCRAM users, if any), starts ``kafka.Kafka``,
   waits until it answers Metadata, and stops it (no orphan JVM: it also dies with its parent).

Listeners: ``plaintext`` always; ``sasl`` (SASL_PLAINTEXT, SCRAM-SHA-256 and -512) when SCRAM
users are given; ``ssl`` (TLS, client certificates required) when a server key store is given.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from agents.broker import BrokerError, die_with_parent, free_port, kill_process, wait_until_ready
from agents.connection import KafkaConnection

DEPLOY_KAFKA = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
POM = DEPLOY_KAFKA / "pom.xml"
SHARED_SERVER_PROPERTIES = DEPLOY_KAFKA / "server.properties"
ENV_JARS = "ASSETWATCH_KAFKA_JARS"
_COMPLETE = ".complete"

LOG4J2 = """status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


def kafka_version() -> str:
    """The Apache Kafka version ``deploy/kafka/pom.xml`` pins."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise BrokerError(f"{POM} names no <kafka.version>")
    return found[1]


def java_command() -> str | None:
    """The ``java`` to run the broker with: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def default_jars_dir() -> Path:
    """``$ASSETWATCH_KAFKA_JARS``, else ``~/.cache/assetwatch/apache-kafka-<version>``."""
    if os.environ.get(ENV_JARS):
        return Path(os.environ[ENV_JARS])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "assetwatch" / f"apache-kafka-{kafka_version()}"


def kafka_jars(directory: Path | None = None, resolve: bool = True) -> Path | None:
    """The directory holding Apache Kafka's jars; resolved with Maven first if it is not
    complete and ``resolve`` (``None`` if it cannot be had: no Maven, or ``resolve`` off).
    A failed resolution raises :class:`BrokerError` with what Maven answered."""
    target = directory or default_jars_dir()
    if (target / _COMPLETE).exists():
        return target
    mvn = shutil.which("mvn")
    if not resolve or mvn is None:
        return None
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        answer = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise BrokerError("could not resolve Apache Kafka's jars with Maven "
                          f"({' '.join(cmd)}):\n" + "\n".join(answer))
    (staging / _COMPLETE).write_text(kafka_version() + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


@dataclass(frozen=True)
class ServerTls:
    """The TLS listener's material, as PEM files: the server's private key (PKCS#8) followed by
    its certificate chain, and the CA that signs the client certificates it accepts."""

    key_and_chain: Path
    client_ca: Path


@dataclass
class ApacheKafka:
    """One Apache Kafka node (KRaft) for one process lifetime.

    ``with ApacheKafka(jars) as kafka: kafka.connection()`` — the PLAINTEXT listener;
    ``kafka.listeners`` has every listener's ``host:port``.
    """

    jars: Path
    scram_users: Mapping[str, str] = field(default_factory=dict)
    tls: ServerTls | None = None
    heap_mb: int = 768
    ready_timeout_s: float = 120.0
    log_level: str = "WARN"
    listeners: dict[str, str] = field(default_factory=dict, init=False)
    workdir: Path | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ApacheKafka:
        java = java_command()
        if java is None:
            raise BrokerError("Apache Kafka needs Java 17 or later: no java on PATH or JAVA_HOME")
        self.workdir = Path(tempfile.mkdtemp(prefix="assetwatch-kafka-"))
        props = self._server_properties()
        config = self.workdir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = self.workdir / "log4j2.properties"
        log4j.write_text(LOG4J2.format(log=self.workdir / "server.log", level=self.log_level))
        base = [java, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{self.jars}/*"]
        fmt = [*base, "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
               # one argument with "=": an id may begin with "-", which argparse takes for a flag
               f"--cluster-id={_cluster_id()}", "--config", str(config)]
        for user, password in self.scram_users.items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                fmt += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        done = subprocess.run(fmt, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            self._cleanup()
            raise BrokerError(f"formatting Apache Kafka's log directory failed: "
                              f"{(done.stdout + done.stderr).strip()[-500:]}")
        self._launch()
        return self

    def _launch(self) -> None:
        """Run the node on the formatted log directory and wait until it answers."""
        java = java_command()
        assert java is not None and self.workdir is not None
        log4j, config = self.workdir / "log4j2.properties", self.workdir / "server.properties"
        out = open(self.workdir / "stdout.log", "ab")  # noqa: SIM115 (closed with the process)
        self._proc = subprocess.Popen(
            [java, f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m", "-XX:+UseG1GC",
             "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp",
             f"{self.jars}/*", "kafka.Kafka", str(config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        out.close()
        try:
            wait_until_ready(self.connection(), self.ready_timeout_s)
            if self._proc.poll() is not None:
                raise BrokerError(f"Apache Kafka exited with code {self._proc.returncode}")
        except BaseException as exc:
            tail = self.log_tail()
            self.stop()
            if isinstance(exc, BrokerError):
                raise BrokerError(f"{exc}\n{tail}") from None
            raise

    def crash(self) -> None:
        """kill -9 of the node (a crash, or a host lost); its log directory and ports stay, so
        :meth:`restart` brings the same cluster back."""
        kill_process(self._proc)

    def restart(self) -> None:
        """Start the node again on its log directory and ports, after :meth:`crash`."""
        if self.running:
            raise BrokerError("Apache Kafka is running: crash() it first")
        if self.workdir is None:
            raise BrokerError("Apache Kafka was stopped: its log directory is gone")
        self._launch()

    def _server_properties(self) -> dict[str, str]:
        props = _read_properties(SHARED_SERVER_PROPERTIES)
        controller = free_port()
        self.listeners = {"plaintext": f"127.0.0.1:{free_port()}"}
        names = {"plaintext": "PLAINTEXT"}
        if self.scram_users:
            self.listeners["sasl"] = f"127.0.0.1:{free_port()}"
            names["sasl"] = "SASL_PLAINTEXT"
            props.update({
                "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
                **{f"listener.name.sasl_plaintext.{m}.sasl.jaas.config":
                   "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                   for m in ("scram-sha-256", "scram-sha-512")},
            })
        if self.tls is not None:
            self.listeners["ssl"] = f"127.0.0.1:{free_port()}"
            names["ssl"] = "SSL"
            props.update({
                "listener.name.ssl.ssl.keystore.type": "PEM",
                "listener.name.ssl.ssl.keystore.location": str(self.tls.key_and_chain),
                "listener.name.ssl.ssl.truststore.type": "PEM",
                "listener.name.ssl.ssl.truststore.location": str(self.tls.client_ca),
                "listener.name.ssl.ssl.client.auth": "required",
            })
        listeners = [f"{names[k]}://{addr}" for k, addr in self.listeners.items()]
        props.update({
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{controller}"]),
            "advertised.listeners": ",".join(listeners),
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                ["CONTROLLER:PLAINTEXT", *(f"{n}:{n}" for n in names.values())]),
            "log.dirs": str(self.workdir / "data"),  # type: ignore[operator]
        })
        return props

    def connection(self, listener: str = "plaintext",
                   properties: Mapping[str, str] | None = None) -> KafkaConnection:
        """How a client reaches one listener (``plaintext``, ``sasl`` or ``ssl``)."""
        return KafkaConnection(self.listeners[listener], dict(properties or {}))

    def log_tail(self, lines: int = 20) -> str:
        """The end of the broker's log (warnings and errors), for error messages."""
        if self.workdir is None:
            return ""
        text = []
        for name in ("server.log", "stdout.log"):
            path = self.workdir / name
            if path.exists():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # a controlled shutdown: a few seconds
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _read_properties(path: Path) -> dict[str, str]:
    from agents.connection import read_properties_file

    return read_properties_file(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.apache_kafka resolve`` (the jars, for CI) or ``run`` (a broker)."""
    ap = argparse.ArgumentParser(prog="python -m agents.apache_kafka", description=__doc__)
    ap.add_argument("action", choices=["resolve", "run"])
    args = ap.parse_args(argv)
    try:
        jars = kafka_jars()
        if jars is None:
            raise BrokerError("Apache Kafka's jars are not cached and Maven (mvn) is not on PATH")
        if args.action == "resolve":
            print(jars)
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with ApacheKafka(jars) as kafka:
            print(f"Apache Kafka {kafka_version()} listening at {kafka.listeners['plaintext']}; "
                  f"Ctrl-C stops it", flush=True)
            try:
                while kafka.running and not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    except BrokerError as exc:
        print(f"assetwatch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
