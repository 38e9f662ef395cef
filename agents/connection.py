"""The Kafka cluster a client reaches: its address, the client properties, and its kind.

Every client the project opens — Faust's (aiokafka) in the worker and confluent-kafka's
(librdkafka) everywhere else — is configured from one :class:`KafkaConnection`. Client
properties use librdkafka's (= Apache Kafka's) names (``security.protocol``,
``sasl.mechanism``, ``ssl.ca.location``…) and come from one place, :class:`agents.settings.Settings`:
a properties file, ``ASSETWATCH_KAFKA_*`` environment variables and the CLI's ``-X``
(docs/configuration.md, "Kafka client properties").

>>> kafka = KafkaConnection("k1:9093", {"security.protocol": "SASL_SSL", "sasl.password": "s3cret"})
>>> kafka.client_config(**{"group.id": "g"})["security.protocol"], str(kafka)
('SASL_SSL', 'k1:9093')
>>> "s3cret" in repr(kafka)
False
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KAFKA_LOG = logging.getLogger("assetwatch.kafka")
# librdkafka's own log lines reach Python logging; unless the user configures logging,
# they stay out of the terminal (a stopped broker makes clients log reconnect attempts)
KAFKA_LOG.addHandler(logging.NullHandler())

#: the environment variables that carry client properties: ``ASSETWATCH_KAFKA_SASL_USERNAME``
#: is ``sasl.username`` (``_`` is ``.``; ``__`` is a literal ``_``)
ENV_PROPERTY_PREFIX = "ASSETWATCH_KAFKA_"
#: ``ASSETWATCH_KAFKA_CONFIG`` names a properties file; it is not itself a property
ENV_CONFIG_FILE = ENV_PROPERTY_PREFIX + "CONFIG"

#: the Tansu broker answers Metadata with this cluster id; its workarounds apply to it only
TANSU_CLUSTER_ID = "tansu_cluster"

_SECRET_WORDS = ("password", "secret", "token", ".pem", "jaas")

#: properties the worker's Faust (aiokafka) clients honour, translated by :meth:`faust_options`
FAUST_PROPERTIES = frozenset({
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.endpoint.identification.algorithm", "client.id", "session.timeout.ms",
    "heartbeat.interval.ms", "max.poll.interval.ms", "request.timeout.ms",
})
#: consumer-group properties, left out of the configuration of clients that join no group
CONSUMER_GROUP_PROPERTIES = ("session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
                             "group.instance.id", "partition.assignment.strategy",
                             "group.protocol", "group.remote.assignor")
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def is_secret(name: str) -> bool:
    """Whether a client property holds a secret (never printed, logged or stored).

    >>> is_secret("sasl.password"), is_secret("ssl.key.password"), is_secret("sasl.username")
    (True, True, False)
    """
    return any(word in name.lower() for word in _SECRET_WORDS)


def masked(properties: Mapping[str, str]) -> dict[str, str]:
    """The properties with every secret value replaced by ``***``.

    >>> masked({"sasl.username": "alice", "sasl.password": "pw"})
    {'sasl.username': 'alice', 'sasl.password': '***'}
    """
    return {k: ("***" if is_secret(k) else v) for k, v in properties.items()}


def parse_property(text: str) -> tuple[str, str]:
    """``name=value`` (as the CLI's ``-X`` takes it) → ``(name, value)``; a ``ValueError`` names
    what is wrong.

    >>> parse_property("security.protocol=SASL_SSL")
    ('security.protocol', 'SASL_SSL')
    >>> parse_property("sasl.password")
    Traceback (most recent call last):
    ...
    ValueError: Kafka client property 'sasl.password': expected NAME=VALUE
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        shown = name if is_secret(name) or not sep else text
        raise ValueError(f"Kafka client property {shown!r}: expected NAME=VALUE")
    return name, value.strip()


def read_properties_file(path: Path) -> dict[str, str]:
    """A Java-style properties file: ``name=value`` lines, ``#`` or ``!`` comments, blank lines.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False) as f:
    ...     _ = f.write("# cluster\\nsecurity.protocol = SSL\\n\\nclient.id=line-3\\n")
    >>> read_properties_file(Path(f.name))
    {'security.protocol': 'SSL', 'client.id': 'line-3'}
    >>> os.unlink(f.name)
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the Kafka client properties file {path}: "
                         f"{exc.strerror or exc}") from exc
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        try:
            name, value = parse_property(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
        props[name] = value
    return props


def properties_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """Client properties from ``ASSETWATCH_KAFKA_*`` variables (the file named by
    ``ASSETWATCH_KAFKA_CONFIG`` first, then each variable).

    >>> properties_from_env({"ASSETWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
    ...                      "ASSETWATCH_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem", "HOME": "/root"})
    {'security.protocol': 'SSL', 'ssl.ca.location': '/etc/ca.pem'}
    """
    props: dict[str, str] = {}
    if env.get(ENV_CONFIG_FILE):
        props.update(read_properties_file(Path(env[ENV_CONFIG_FILE])))
    for var, value in sorted(env.items()):
        if var.startswith(ENV_PROPERTY_PREFIX) and var != ENV_CONFIG_FILE:
            suffix = var[len(ENV_PROPERTY_PREFIX):].lower()
            props[suffix.replace("__", "\0").replace("_", ".").replace("\0", "_")] = value
    return props


def env_of(properties: Mapping[str, str]) -> dict[str, str]:
    """The ``ASSETWATCH_KAFKA_*`` variables that carry ``properties`` to a child process.

    >>> env_of({"sasl.username": "alice", "my_prop.x": "1"})
    {'ASSETWATCH_KAFKA_SASL_USERNAME': 'alice', 'ASSETWATCH_KAFKA_MY__PROP_X': '1'}
    >>> properties_from_env(env_of({"my_prop.x": "1"}))
    {'my_prop.x': '1'}
    """
    return {ENV_PROPERTY_PREFIX + k.replace("_", "__").replace(".", "_").upper(): v
            for k, v in properties.items()}


@dataclass(frozen=True)
class KafkaConnection:
    """A Kafka cluster and how to reach it: ``bootstrap`` (``host:port[,host:port…]``), client
    ``properties`` (librdkafka names; secrets never shown), and whether it is the embedded
    Tansu broker (``embedded``), whose workarounds (a 2 s consumer group, one record per
    produce batch) apply to it alone."""

    bootstrap: str
    properties: Mapping[str, str] = field(default_factory=dict)
    embedded: bool = False

    def __str__(self) -> str:
        return self.bootstrap

    def __repr__(self) -> str:
        return (f"KafkaConnection({self.bootstrap!r}, {masked(self.properties)!r}, "
                f"embedded={self.embedded})")

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka settings for a confluent-kafka client: the connection's properties, then
        the client's own ``extra`` ones; logs go to Python logging. A client without a
        ``group.id`` (a producer, an admin client) does not get the consumer group's
        properties, which librdkafka would only warn about.

        >>> KafkaConnection("k:9092", {"session.timeout.ms": "6000"}).client_config()["bootstrap.servers"]
        'k:9092'
        >>> "session.timeout.ms" in KafkaConnection("k:9092", {"session.timeout.ms": "6000"}).client_config()
        False
        """
        props = dict(self.properties)
        if "group.id" not in extra and "group.id" not in props:
            for name in CONSUMER_GROUP_PROPERTIES:
                props.pop(name, None)
        return {**props, "bootstrap.servers": self.bootstrap, "logger": KAFKA_LOG, **extra}

    def env(self) -> dict[str, str]:
        """Environment variables that give a child ``assetwatch`` process these properties."""
        return env_of(self.properties)

    def ignored_by_faust(self) -> list[str]:
        """The properties the worker's Faust clients do not take (confluent-kafka's do)."""
        return sorted(set(self.properties) - FAUST_PROPERTIES)

    def faust_options(self) -> dict[str, Any]:
        """``faust.App`` settings for these properties: broker URLs, credentials, TLS context,
        client id, group timeouts. Raises ``ValueError`` on a value aiokafka cannot use.

        >>> KafkaConnection("a:1,b:2", {"session.timeout.ms": "10000"}).faust_options()
        {'broker': ['kafka://a:1', 'kafka://b:2'], 'broker_session_timeout': 10.0, \
'broker_rebalance_timeout': 10.0}
        """
        p = self.properties
        opts: dict[str, Any] = {"broker": [f"kafka://{h.strip()}" for h in self.bootstrap.split(",")
                                           if h.strip()]}
        protocol = p.get("security.protocol", "PLAINTEXT").upper()
        if protocol not in _SECURITY_PROTOCOLS:
            raise ValueError(f"security.protocol {protocol!r} is not one of {', '.join(_SECURITY_PROTOCOLS)}")
        context = self.ssl_context() if protocol in ("SSL", "SASL_SSL") else None
        if protocol.startswith("SASL"):
            import faust

            mechanism = (p.get("sasl.mechanism") or p.get("sasl.mechanisms") or "GSSAPI").upper()
            if mechanism not in _SASL_MECHANISMS:
                raise ValueError(f"sasl.mechanism {mechanism!r} is not supported by the worker's "
                                 f"Kafka client (use one of {', '.join(_SASL_MECHANISMS)})")
            opts["broker_credentials"] = faust.SASLCredentials(
                username=p.get("sasl.username"), password=p.get("sasl.password"),
                ssl_context=context, mechanism=mechanism)
        elif context is not None:
            import faust

            opts["broker_credentials"] = faust.SSLCredentials(context)
        if "client.id" in p:
            opts["broker_client_id"] = p["client.id"]
        for prop, names in (("session.timeout.ms", ("broker_session_timeout", "broker_rebalance_timeout")),
                            ("heartbeat.interval.ms", ("broker_heartbeat_interval",)),
                            ("max.poll.interval.ms", ("broker_max_poll_interval",)),
                            ("request.timeout.ms", ("broker_request_timeout",))):
            if prop in p:
                seconds = _milliseconds(prop, p[prop]) / 1000
                opts.update(dict.fromkeys(names, seconds))
        return opts

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context from ``ssl.ca.location``, ``ssl.certificate.location``,
        ``ssl.key.location``/``ssl.key.password`` and ``ssl.endpoint.identification.algorithm``
        (``none`` turns host name checks off; the certificate is still verified)."""
        p = self.properties
        try:
            context = ssl.create_default_context(cafile=p.get("ssl.ca.location"))
            if p.get("ssl.certificate.location"):
                context.load_cert_chain(p["ssl.certificate.location"], p.get("ssl.key.location"),
                                        password=p.get("ssl.key.password"))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"TLS client settings unusable: {exc}") from exc
        if p.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
            context.check_hostname = False
        return context


def _milliseconds(name: str, value: str) -> int:
    try:
        ms = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of milliseconds, not {value!r}") from None
    if not 0 < ms <= 3_600_000:
        raise ValueError(f"{name} must be between 1 and 3600000 ms, not {ms}")
    return ms


def merge_properties(*layers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Later layers win: defaults, then the file and the environment, then the CLI.

    >>> merge_properties({"client.id": "a"}, [("client.id", "b"), ("acks", "all")])
    {'client.id': 'b', 'acks': 'all'}
    """
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer.items() if isinstance(layer, Mapping) else layer)
    return merged
