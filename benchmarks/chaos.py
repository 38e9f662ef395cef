"""Chaos suite: kill -9 a worker under load again and again, then count what was lost.

Run: ``python -m benchmarks.chaos [--kills 20] [--broker HOST:PORT | --apache-kafka]``
(the embedded broker by default). A producer streams a fleet with injected faults at a steady
rate, one reading per message; meanwhile a worker is started, left to score for a random
0.5–3 s, and killed with SIGKILL, ``--kills`` times; a last worker then finishes the stream.
The published anomaly and alert records are compared with a from-scratch scoring of the same
readings by the pure engine (one process, no crash), and counted:

* **anomalies lost** — expected keys never published (a point lost, or scored wrongly);
* **anomalies spurious** — published keys the reference does not have;
* **keys with conflicting records** — a key published twice with different values (a point
  scored twice differently). A key published twice with the *same* record is the crash
  window's idempotent re-publication (docs/state-and-recovery.md), counted apart;
* **alerts lost / spurious / wrong** — alert groups (by id) missing, extra, or whose last
  record differs from the reference's (state, anomaly count, span).

Targets: 0 for every count but the idempotent re-publications. ``tests/integration/test_chaos.py``
runs the short form (3 kills) in CI; docs/reliability.md records full runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from agents.apache_kafka import ApacheKafka, kafka_jars, kafka_version
from agents.broker import ensure_topics, resolved_broker
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer, poll_values, produce_readings, topic_reader
from agents.model_store import ModelStore
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess
from streams.alerts import AlertConfig
from streams.codec import encode_telemetry, loads
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model, ModelParams, fit_model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import SIGNALS, Fault, FaultKind, generate_fleet, training_rows

START_MS = 1_767_225_600_000
INTERVAL_MS = 1_000
PARTITIONS = 4


@dataclass
class ChaosResult:
    """The counts of one chaos run (see the module docstring)."""

    kills: int
    readings: int
    expected_anomalies: int
    anomalies_lost: int
    anomalies_spurious: int
    conflicting_keys: int
    republished_keys: int
    expected_alerts: int
    alerts_lost: int
    alerts_spurious: int
    alerts_wrong: int
    late_records: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: the expected anomaly keys never published, and the published keys never expected
    #: (sorted; what a failing run's message names)
    lost_keys: list[str] = field(default_factory=list)
    spurious_keys: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Whether every count that must be 0 is."""
        return not (self.anomalies_lost or self.anomalies_spurious or self.conflicting_keys
                    or self.alerts_lost or self.alerts_spurious or self.alerts_wrong
                    or self.late_records)


def chaos_fleet(assets: int, points: int, seed: int) -> list[Reading]:
    """A fleet with a fault every few assets, spread over the stream."""
    names = [f"pump-{i:03d}" for i in range(assets)]
    rng = random.Random(seed)
    kinds: tuple[FaultKind, ...] = ("spike", "drift", "stuck")
    faults = [Fault(name, kinds[i % 3], rng.randrange(30, points - 40), 3 if i % 3 == 0 else 25)
              for i, name in enumerate(names) if i % 2 == 0]
    return generate_fleet(names, points, START_MS, INTERVAL_MS, seed=seed, faults=faults).readings


def chaos_model() -> Model:
    return fit_model(training_rows(4, 1500, seed=3),
                     ModelParams(model_id="chaos", signals=SIGNALS, window_size=8))


@dataclass
class Reference:
    """What an uninterrupted scoring of the readings publishes (the pure engine, one process)."""

    #: anomaly key → record
    anomalies: dict[str, bytes]
    #: alert id → its last record
    alerts: dict[str, dict[str, Any]]
    #: the notification id of every alert state that notifies its hooks
    notifications: set[str]


def reference_of(inference: InferenceConfig, model: Model, topic: str,
                 readings: Sequence[Reading]) -> Reference:
    """An uninterrupted scoring of ``readings``: the chaos runs' expected output."""
    from streams.alert_codec import encode_alert
    from streams.codec import encode_anomaly
    from streams.notification import notification_id
    engine = Engine([AssetScorer(inference, model)], load=lambda k: None, partitions=1)
    engine.owned = {0}
    out = engine.process_batch([Message(topic, 0, i, r.asset_id.encode(), encode_telemetry([r]))
                                for i, r in enumerate(readings)], now_ms=START_MS)
    tail = engine.tick(now_ms=10**13)  # the worker's idle rule finalises the last slots
    alerts = out.alerts + tail.alerts
    return Reference({a.key: encode_anomaly(a) for _, a in out.anomalies + tail.anomalies},
                     {a.alert_id: loads(encode_alert(a)) for _, a, _ in alerts},
                     {notification_id(a) for _, a, hooks in alerts if a.notify and hooks})


def same_alert(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("state", "anomaly_count", "first_ts", "last_ts", "assets")
    return all(a.get(k) == b.get(k) for k in keys)


@dataclass
class Published:
    """What the workers published, as a downstream reader sees it."""

    anomalies: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    late: int = 0


@dataclass
class Rig:
    """One chaos run's deployment: its settings and files, the readings it sends, and what an
    uninterrupted scoring of them publishes."""

    kafka: KafkaConnection
    workdir: Path
    settings: Settings
    inference: InferenceConfig
    readings: list[Reading]
    expected: Reference
    sent: threading.Event = field(default_factory=threading.Event)

    def worker(self, label: str) -> WorkerProcess:
        return WorkerProcess(self.kafka, self.workdir / "inferences.json",
                             self.settings.models_dir, self.settings.app_id,
                             self.settings.topics.prefix, PARTITIONS,
                             log_path=self.workdir / f"{label}.log")

    def start_feed(self, rate: float) -> threading.Thread:
        """Send the readings at ``rate`` per second, one per message, in a thread; ``sent``
        is set once the broker has them all."""

        def feed() -> None:
            producer = make_producer(self.kafka)
            t0 = time.monotonic()
            for i, r in enumerate(self.readings):
                produce_readings(producer, self.settings.topics.telemetry, [r])
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # pacing the load, not synchronisation
            # a broker restart may hold the last records back: wait for them as long as the
            # producer's own delivery timeout allows
            if producer.flush(300) == 0:
                self.sent.set()

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        return thread

    def complete(self, seen: Published) -> bool:
        """Whether every expected anomaly and every alert's last record have been seen."""
        return self.sent.is_set() and set(seen.anomalies) >= set(self.expected.anomalies) and all(
            a in seen.alerts and same_alert(seen.alerts[a][-1], r)
            for a, r in self.expected.alerts.items())

    def collect(self, done: Callable[[Published], bool], timeout_s: float,
                between: Callable[[], None] = lambda: None) -> Published:
        """Read the anomalies, alerts and late topics until ``done`` (or the deadline), then a
        little more: anything published after the expected set was complete counts too.
        ``between`` runs between reads (a supervisor's check, say)."""
        t = self.settings.topics
        seen = Published()
        readers = {name: topic_reader(self.kafka, name, PARTITIONS)
                   for name in (t.anomalies, t.alerts, t.late)}

        def read(wait_s: float) -> None:
            for k, v in poll_values(readers[t.anomalies], wait_s):
                if k is not None and v is not None:
                    seen.anomalies[k.decode()].append(v)
            for k, v in poll_values(readers[t.alerts], 0.05):
                if k is not None and v is not None:
                    seen.alerts[k.decode()].append(loads(v))
            seen.late += sum(1 for _ in poll_values(readers[t.late], 0.05))

        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not done(seen):
                read(0.2)
                between()
            for _ in range(3):
                read(0.3)
        finally:
            for reader in readers.values():
                reader.close()
        return seen

    def result(self, seen: Published, kills: int, started: float) -> ChaosResult:
        values = {k: Counter(vs) for k, vs in seen.anomalies.items()}
        expected, alerts = self.expected, seen.alerts
        return ChaosResult(
            kills=kills, readings=len(self.readings), expected_anomalies=len(expected.anomalies),
            anomalies_lost=len(set(expected.anomalies) - set(seen.anomalies)),
            anomalies_spurious=len(set(seen.anomalies) - set(expected.anomalies)),
            conflicting_keys=sum(len(c) > 1 for c in values.values()),
            republished_keys=sum(len(c) == 1 and sum(c.values()) > 1 for c in values.values()),
            expected_alerts=len(expected.alerts),
            alerts_lost=len(set(expected.alerts) - set(alerts)),
            alerts_spurious=len(set(alerts) - set(expected.alerts)),
            alerts_wrong=sum(1 for a, r in expected.alerts.items()
                             if a in alerts and not same_alert(alerts[a][-1], r)),
            late_records=seen.late, seconds=time.monotonic() - started,
            lost_keys=sorted(set(expected.anomalies) - set(seen.anomalies)),
            spurious_keys=sorted(set(seen.anomalies) - set(expected.anomalies)))


def make_rig(kafka: KafkaConnection, workdir: Path, assets: int, points: int, seed: int,
             hooks: Sequence[str] = ()) -> Rig:
    """A fresh deployment (topics named for this run) scoring a fleet with faults; the
    inference's alerts notify ``hooks``."""
    name = f"chaos-{seed}-{os.getpid()}-{time.monotonic_ns() % 10**8}"
    settings = replace(Settings(), broker=kafka.bootstrap, kafka_properties=kafka.properties,
                       app_id=name, topics=TopicNames(name), partitions=PARTITIONS,
                       models_dir=workdir / "models")
    model = chaos_model()
    ModelStore(settings.models_dir).save(model)
    topic = settings.topics.telemetry
    inference = InferenceConfig(inference_id="inf", model_id=model.model_id, topic=topic,
                                clock="event", idle_timeout_ms=1_000,
                                alerts=(AlertConfig("faults", correlation_points=5),),
                                hooks=tuple(hooks))
    (workdir / "inferences.json").write_bytes(orjson.dumps([inference.to_dict()]))
    ensure_topics(kafka, topic_specs(settings))
    readings = chaos_fleet(assets, points, seed)
    return Rig(kafka, workdir, settings, inference, readings,
               reference_of(inference, model, topic, readings))


def run_chaos(kafka: KafkaConnection, workdir: Path, kills: int, assets: int = 16,
              points: int = 400, rate: float = 300.0, seed: int = 0,
              log: Any = print) -> ChaosResult:
    """One chaos run on ``kafka`` (see the module docstring); files under ``workdir``."""
    rig = make_rig(kafka, workdir, assets, points, seed)
    rng = random.Random(seed)
    started = time.monotonic()
    feeder = rig.start_feed(rate)
    for i in range(kills):
        with rig.worker(f"killed-{i}") as w:
            w.wait_ready(90)
            time.sleep(rng.uniform(0.5, 3.0))  # a random moment under load: the chaos itself
            w.kill()
        log(f"kill {i + 1}/{kills} at {time.monotonic() - started:.1f} s")
    with rig.worker("last") as last:
        last.wait_ready(90)
        seen = rig.collect(rig.complete, 180)
    feeder.join(10)
    return rig.result(seen, kills, started)


def _print_table(title: str, rows: Sequence[tuple[str, Any, Any]]) -> None:
    print(f"\n{title}\n")
    print("| count | value | target |\n|---|--:|--:|")
    for label, value, target in rows:
        print(f"| {label} | {value} | {target} |")


def _rows(result: ChaosResult) -> list[tuple[str, Any, Any]]:
    return [("anomalies expected", result.expected_anomalies, "—"),
            ("anomalies lost", result.anomalies_lost, 0),
            ("anomalies spurious", result.anomalies_spurious, 0),
            ("keys with conflicting records", result.conflicting_keys, 0),
            ("keys re-published with the same record (idempotent)", result.republished_keys, "—"),
            ("alerts expected", result.expected_alerts, "—"),
            ("alerts lost", result.alerts_lost, 0),
            ("alerts spurious", result.alerts_spurious, 0),
            ("alerts whose last record is wrong", result.alerts_wrong, 0),
            ("late records (event clock: none expected)", result.late_records, 0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=("kills", "broker-restart", "hooks-down"),
                    default="kills", help="kills: kill -9 of workers (this module); "
                    "broker-restart: benchmarks/chaos_broker.py (Apache Kafka from its jars); "
                    "hooks-down: benchmarks/chaos_hooks.py")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--restarts", type=int, default=3, help="broker-restart: broker crashes")
    ap.add_argument("--down", type=float, default=None,
                    help="seconds down: the broker (default 5) or the hook endpoints (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--assets", type=int, default=16)
    ap.add_argument("--rate", type=float, default=300.0, help="readings per second sent")
    ap.add_argument("--points", type=int, default=None,
                    help="points per asset (default: enough to keep the load on for every kill)")
    ap.add_argument("--broker", default=os.environ.get("ASSETWATCH_BROKER"))
    ap.add_argument("--apache-kafka", action="store_true",
                    help="run on Apache Kafka started from Maven Central's jars (needs Java, Maven)")
    ap.add_argument("--embedded-s3", action="store_true",
                    help="broker-restart: crash the embedded broker on S3 storage in a local S3 "
                    "server (gofakes3, built with Go) instead of Apache Kafka")
    args = ap.parse_args()
    day = time.strftime("%Y-%m-%d")
    if args.scenario == "broker-restart":
        from benchmarks.chaos_broker import apache_kafka_node, embedded_s3_node, run_broker_restart
        from benchmarks.local_s3 import gofakes3_binary
        node: contextlib.AbstractContextManager[Any]
        if args.embedded_s3:
            gofakes3 = gofakes3_binary()
            if gofakes3 is None:
                raise SystemExit("broker-restart --embedded-s3: gofakes3 is not built and Go is missing")
            node = embedded_s3_node(gofakes3)
        else:
            jars = kafka_jars()
            if jars is None:
                raise SystemExit("broker-restart: Apache Kafka's jars are not cached and mvn is missing")
            node = apache_kafka_node(jars)
        down = 5.0 if args.down is None else args.down
        points = args.points or max(300, int(args.rate * args.restarts * (down + 6) / args.assets))
        with tempfile.TemporaryDirectory() as tmp:
            run = run_broker_restart(node, Path(tmp), args.restarts, down, args.assets, points,
                                     args.rate, args.seed)
        _print_table(f"broker-restart run, {day}, on {run.broker}: "
                     f"{run.broker_restarts} kill -9 of the broker, down {run.down_s:.0f} s each, "
                     f"{run.counts.readings:,} readings, worker restarts needed: "
                     f"{run.worker_restarts}, {run.counts.seconds:.0f} s", _rows(run.counts))
        if not run.counts.clean:
            raise SystemExit("chaos run: some count that must be 0 is not")
        return
    with contextlib.ExitStack() as stack:
        if args.apache_kafka:
            jars = kafka_jars()
            if jars is None:
                raise SystemExit("--apache-kafka: Apache Kafka's jars are not cached and mvn is missing")
            args.broker = stack.enter_context(ApacheKafka(jars)).listeners["plaintext"]
        broker = (f"Apache Kafka {kafka_version()}" if args.apache_kafka else
                  f"the cluster at {args.broker}" if args.broker else "the embedded broker (Tansu)")
        settings = Settings.from_env(os.environ, broker=args.broker)
        with tempfile.TemporaryDirectory() as tmp, resolved_broker(settings) as kafka:
            if args.scenario == "hooks-down":
                from benchmarks.chaos_hooks import run_hooks_down
                down = 600.0 if args.down is None else args.down
                hooks = run_hooks_down(kafka, Path(tmp), down, assets=args.assets,
                                       points=args.points or 300, rate=args.rate, seed=args.seed)
                _print_table(f"hooks-down run, {day}, on {broker}: webhook and SMTP endpoints "
                             f"down {hooks.down_s:.0f} s across a kill -9 and restart of the "
                             f"worker, {hooks.readings:,} readings, {hooks.seconds:.0f} s",
                             hooks.rows())
                if not hooks.clean:
                    raise SystemExit("chaos run: some count that must be 0 is not")
                return
            # a worker lives ~6 s (start, ready, 0.5–3 s of scoring): feed that long per kill
            points = args.points or max(300, int(args.rate * args.kills * 6 / args.assets))
            result = run_chaos(kafka, Path(tmp), args.kills, assets=args.assets, points=points,
                               rate=args.rate, seed=args.seed)
    _print_table(f"chaos run, {day}, on {broker}: {result.kills} kill -9 of a worker under "
                 f"load, {result.readings:,} readings, {result.seconds:.0f} s", _rows(result))
    if not result.clean:
        raise SystemExit("chaos run: some count that must be 0 is not")


if __name__ == "__main__":
    main()
