"""``assetwatch tail``: print the anomaly, alert or dead-letter records of a deployment as they
arrive, in aligned columns (coloured on a terminal) or as one JSON object per line.

It reads with its own consumer, assigned every partition (no consumer group: it never moves
the workers' partitions or commits anything), from the end of each partition, or from the
beginning with ``--from-beginning``. A record it cannot read is reported on stderr and
skipped. ``--max`` and ``--timeout`` end it (scripts, tests); otherwise Ctrl-C does.

>>> cols = Columns()
>>> row = render_anomaly(cols, {"ts_iso": "2026-01-01T00:00:00.000Z", "inference_id": "line-3",
...     "asset_id": "pump-7", "severity": 0.93, "score": 7.41, "contributions": {"vib": 0.88,
...     "temp": 0.12}, "filled": False, "replay_id": None})
>>> click.unstyle(row)
'2026-01-01T00:00:00.000Z  line-3        pump-7        0.93     7.41  vib 88%, temp 12%'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import click
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from agents.broker import BrokerError, connect
from agents.connection import KafkaConnection
from agents.settings import Settings
from streams.codec import format_ts, loads

KINDS: Final = ("anomalies", "alerts", "dead-letter")
SEVERITY_RED: Final = 0.9
ALERT_COLOURS: Final[Mapping[str, str]] = {
    "open": "red", "updated": "yellow", "resolved": "green", "single": "magenta"}


@dataclass
class Columns:
    """Column widths that only grow: rows stay aligned with the widest value seen so far."""

    widths: dict[int, int] = field(default_factory=dict)

    def row(self, cells: Sequence[tuple[str, int, str | None]]) -> str:
        """Cells ``(text, minimum width, colour)``; numbers are right-aligned, the last cell
        is not padded."""
        parts = []
        for i, (text, minimum, colour) in enumerate(cells):
            last = i == len(cells) - 1
            width = max(self.widths.get(i, minimum), len(text))
            self.widths[i] = width
            numeric = _is_number(text)
            padded = text if last else (text.rjust(width) if numeric else text.ljust(width))
            parts.append(click.style(padded, fg=colour) if colour else padded)
        return "  ".join(parts).rstrip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _top(contributions: Mapping[str, float], n: int = 2) -> str:
    ranked = sorted(contributions.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {share:.0%}" for name, share in ranked)


def render_anomaly(cols: Columns, r: Mapping[str, Any]) -> str:
    """One anomaly: time, inference, asset, severity, score, the signals that drove it."""
    severity = float(r["severity"])
    notes = [_top(r.get("contributions") or {})]
    if r.get("filled"):
        notes.append("filled")
    if r.get("replay_id"):
        notes.append(f"replay {r['replay_id']}")
    return cols.row([
        (str(r["ts_iso"]), 24, None),
        (str(r["inference_id"]), 12, "cyan"),
        (str(r["asset_id"]), 12, "bright_white"),
        (f"{severity:.2f}", 4, "red" if severity >= SEVERITY_RED else "yellow"),
        (f"{float(r['score']):.2f}", 7, None),
        ("  ".join(n for n in notes if n), 0, None),
    ])


def render_alert(cols: Columns, r: Mapping[str, Any]) -> str:
    """One alert record: last time, state, inference, configuration, assets, count, severity."""
    assets = list(r.get("assets") or [])
    shown = ",".join(assets[:3]) + (f" +{len(assets) - 3}" if len(assets) > 3 else "")
    return cols.row([
        (format_ts(int(r["last_ts"])), 24, None),
        (str(r["state"]), 8, ALERT_COLOURS.get(str(r["state"]))),
        (str(r["inference_id"]), 12, "cyan"),
        (str(r["alert_config"]), 10, None),
        (shown, 12, "bright_white"),
        (str(r["anomaly_count"]), 4, None),
        (f"{float(r['max_severity']):.2f}", 4, None),
        (f"{','.join(r.get('top_signals') or [])}  {r['alert_id']}", 0, None),
    ])


def render_dead_letter(cols: Columns, r: Mapping[str, Any]) -> str:
    """One dead letter: when, where from, its key, why."""
    where = f"{r['source_topic']}[{r['partition']}]@{r['offset']}"
    return cols.row([
        (format_ts(int(r["received_at"])), 24, None),
        (where, 20, None),
        (str(r.get("key")), 10, "bright_white"),
        (str(r["reason"]), 0, "red"),
    ])


RENDER: Final[Mapping[str, Callable[[Columns, Mapping[str, Any]], str]]] = {
    "anomalies": render_anomaly, "alerts": render_alert, "dead-letter": render_dead_letter}
HEADERS: Final[Mapping[str, tuple[str, ...]]] = {
    "anomalies": ("time", "inference", "asset", "severity", "score", "signals"),
    "alerts": ("last anomaly", "state", "inference", "config", "assets", "count", "max sev",
               "top signals  alert id"),
    "dead-letter": ("received", "source", "key", "reason"),
}
_HEADER_MIN: Final[Mapping[str, tuple[int, ...]]] = {
    "anomalies": (24, 12, 12, 4, 7, 0), "alerts": (24, 8, 12, 10, 12, 4, 4, 0),
    "dead-letter": (24, 20, 10, 0)}


@dataclass(frozen=True, slots=True)
class TailFilter:
    """Which records to show: ``None`` shows every inference / asset."""

    inference: str | None = None
    asset: str | None = None

    def wants(self, record: Mapping[str, Any]) -> bool:
        if self.inference is not None and record.get("inference_id") != self.inference:
            return False
        if self.asset is not None:
            assets = record.get("assets")
            if isinstance(assets, list):
                return self.asset in assets
            return record.get("asset_id") == self.asset
        return True


def topic_of(settings: Settings, kind: str) -> str:
    """The topic a kind of record lives on, for the deployment's topic prefix."""
    topics = settings.topics
    if kind == "anomalies":
        return topics.anomalies
    if kind == "dead-letter":
        return topics.dead_letter
    return topics.alerts


def open_reader(kafka: KafkaConnection, topic: str, from_beginning: bool) -> Consumer:
    """A consumer assigned every partition of ``topic`` (no group), at its end or beginning."""
    consumer = Consumer(kafka.client_config(**{
        "group.id": f"assetwatch-tail-{os.getpid()}-{time.monotonic_ns()}",
        "enable.auto.commit": False, "fetch.queue.backoff.ms": 10,
    }))
    try:
        meta = consumer.list_topics(topic, timeout=10)
    except KafkaException as exc:
        consumer.close()
        raise BrokerError(f"cannot reach the broker at {kafka}: {exc}") from exc
    found = meta.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        consumer.close()
        raise BrokerError(f"topic {topic} does not exist at {kafka}")
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in sorted(found.partitions)])
    return consumer


def records(consumer: Consumer, deadline: float | None) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record as it arrives, until ``deadline`` (monotonic) if given."""
    while deadline is None or time.monotonic() < deadline:
        wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
        for m in consumer.consume(num_messages=500, timeout=wait):
            if m.error() is None:
                yield m.key(), m.value()


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--broker", metavar="HOST:PORT", default=None,
              help="Kafka bootstrap address (env ASSETWATCH_BROKER); required.")
@click.option("--topic-prefix", default=None, help="Topic prefix of the deployment (default assetwatch).")
@click.option("--inference", default=None, help="Only this inference's records.")
@click.option("--asset", default=None, help="Only this asset's records.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of the newest.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line, as published.")
@click.option("--max", "max_records", type=click.IntRange(min=1), default=None,
              help="Stop after printing this many records.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds.")
def tail(kind: str, broker: str | None, topic_prefix: str | None, inference: str | None,
         asset: str | None, from_beginning: bool, as_json: bool, max_records: int | None,
         timeout_s: float | None) -> None:
    """Print anomalies, alerts or dead letters as they arrive (Ctrl-C ends)."""
    settings = Settings.from_env(os.environ, broker=broker, topic_prefix=topic_prefix)
    if settings.broker is None:
        raise click.UsageError("tail reads a running deployment: pass --broker HOST:PORT "
                               "(or set ASSETWATCH_BROKER)")
    if kind == "dead-letter" and inference is not None:
        raise click.UsageError("dead letters belong to no inference: drop --inference")
    wanted = TailFilter(inference, asset)
    render = RENDER[kind]
    cols = Columns()
    consumer = open_reader(connect(settings), topic_of(settings, kind), from_beginning)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if not as_json:
        click.echo(click.style(cols.row([(h, w, None) for h, w in zip(
            HEADERS[kind], _HEADER_MIN[kind], strict=True)]), bold=True))
    shown = 0
    try:
        for key, value in records(consumer, deadline):
            if value is None:  # a tombstone: a replay cleared this key
                if not as_json:
                    click.echo(click.style(f"cleared {key.decode(errors='replace') if key else ''}",
                                           dim=True))
                continue
            try:
                record = loads(value)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                line = value.decode() if as_json else render(cols, record)
            except (ValueError, KeyError, TypeError) as exc:
                click.echo(f"assetwatch tail: skipped an unreadable record: {exc}", err=True)
                continue
            if not wanted.wants(record):
                continue
            click.echo(line)
            shown += 1
            if max_records is not None and shown >= max_records:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
