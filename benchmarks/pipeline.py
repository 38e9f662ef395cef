"""End-to-end benchmark: assetwatch beside Faust's floor and a naive Faust + River pipeline.

Run: ``python -m benchmarks.pipeline [--broker HOST:PORT | --apache-kafka] [--assets 1000] [--quick]``
(the embedded broker by default; ``--apache-kafka`` starts Apache Kafka from its jars,
docs/apache-kafka.md).

Throughput runs time a worker from the first point it reports received to the last one
finalised, on two paths apart: **live** (the worker runs, its inference active, and the
readings are sent as fast as the producer goes) and **pre-fill** (the readings are on the
topic before the worker starts; its inference's first epoch reads them as history). The
baselines (Faust's empty agent, a naive Faust + River HalfSpaceTrees pipeline) read a
pre-loaded topic. The latency runs feed a fresh worker one reading per message at half the
sustained live rate, at sensitivity 70 and 100, and report per published anomaly produced →
read (a reader consuming all along stamps each record's arrival) and the worker's own
due → published histogram. Peak resident memory is the worker process's VmHWM. Results
print as Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from agents.apache_kafka import ApacheKafka, kafka_jars, kafka_version
from agents.broker import TopicSpec, ensure_topics, free_port, resolved_broker
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer, produce_readings, topic_reader
from agents.model_store import ModelStore
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess, fetch_status
from streams.model import ModelParams, fit_model
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows

START_MS = 1_767_225_600_000
INTERVAL_MS = 1_000  # the data interval of every generated feed
PARTITIONS = 8
REPO = Path(__file__).resolve().parents[1]
POLL_S = 0.02
#: the latency feed's producer batches what it sends within 5 ms (as producers do: a record each
#: time would flood the broker with tiny requests, and the test rig, not the worker, would lag)
LATENCY_LINGER_MS = 5


@dataclass
class Result:
    name: str
    points: int
    messages: int
    seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


FINALISED = ("scored", "warming_up", "late", "duplicate", "incomplete")


class Bench:
    def __init__(self, kafka: KafkaConnection, assets: int, workdir: Path) -> None:
        self.kafka = kafka
        self.assets = [f"asset-{i:05d}" for i in range(assets)]
        self.workdir = workdir
        model = fit_model(training_rows(8, 2000, seed=3),
                          ModelParams(model_id="bench", signals=SIGNALS, window_size=16))
        ModelStore(workdir / "models").save(model)

    def fresh(self, sensitivity: int = 70) -> tuple[Settings, Path]:
        name = "bench-" + uuid.uuid4().hex[:8]
        settings = replace(Settings(), app_id=name, topics=TopicNames(name), partitions=PARTITIONS)
        inf = self.workdir / f"{name}.json"
        inf.write_bytes(orjson.dumps([{"inference_id": "bench", "model_id": "bench",
                                       "topic": settings.topics.telemetry,
                                       "sensitivity": sensitivity, "clock": "event",
                                       "idle_timeout_ms": 1_000}]))
        ensure_topics(self.kafka, topic_specs(settings))
        return settings, inf

    def preload(self, settings: Settings, points_per_asset: int, per_message: int,
                assets: list[str] | None = None) -> tuple[int, int]:
        fleet = generate_fleet(assets or self.assets, points_per_asset, START_MS, 1000, seed=1)
        producer = make_producer(self.kafka, **{"linger.ms": 20})
        messages = produce_readings(producer, settings.topics.telemetry, fleet.readings, per_message)
        producer.flush(60)
        return len(fleet.readings), messages

    def time_worker(self, name: str, proc: subprocess.Popen[bytes], status: Callable[[], Any],
                    target: int, points: int, messages: int, log: Path,
                    counted: tuple[str, ...] = ("received",)) -> Result:
        """Time from the first message the worker reports received until ``target`` points,
        summing the ``counted`` counters of its status page."""
        t_first = t_last = None
        deadline = time.monotonic() + 600
        # progress on stderr, only on a terminal: the table on stdout stays clean
        with click.progressbar(length=target, label=name, file=sys.stderr,
                               hidden=not sys.stderr.isatty()) as bar:
            shown = 0
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                    raise RuntimeError(f"{name}: worker exited with {proc.returncode}:\n{tail}")
                st = status() or {}
                counts = st.get("counts", {})
                n = sum(counts.get(k, 0) for k in counted)
                now = time.monotonic()
                bar.update(max(min(n, target) - shown, 0))
                shown = max(shown, min(n, target))
                if counts.get("received", 0) and t_first is None:
                    t_first = now
                if n >= target:
                    t_last = now
                    break
                time.sleep(POLL_S)  # polling interval of a deadline-bounded wait
        if t_first is None or t_last is None:
            raise RuntimeError(f"{name}: did not finish within the deadline")
        # the poll interval is the resolution: a run finished between two polls took at most it
        seconds = max(t_last - t_first, POLL_S)
        return Result(name, points, messages, seconds, peak_rss_mb(proc.pid))

    def run_assetwatch(self, points_per_asset: int, per_message: int, path: str = "live",
                       assets: list[str] | None = None, label: str = "") -> Result:
        """``live``: the worker is running, its inference active, when the readings are sent
        (as fast as the producer goes), so the live stream takes them all. ``prefill``: the
        readings are on the topic before the worker starts, so its inference's first epoch
        reads them as history (the pre-fill path). Timed from the first point received to
        the last one finalised ("received" alone does not say they were scored)."""
        settings, inf = self.fresh()
        log = self.workdir / f"worker-{path}.log"
        w = WorkerProcess(self.kafka, inf, self.workdir / "models", settings.app_id,
                          settings.topics.prefix, PARTITIONS, log_path=log)
        kind = " pre-fill" if path == "prefill" else ""
        name = label or f"assetwatch{kind}, {per_message} reading(s)/message"
        fleet_assets = assets or self.assets
        if path == "prefill":
            points, messages = self.preload(settings, points_per_asset, per_message, fleet_assets)
        with w:
            assert w.proc is not None
            if path == "live":
                w.wait_ready(120)
                feeder = threading.Thread(target=self.preload, daemon=True,
                                          args=(settings, points_per_asset, per_message, fleet_assets))
                feeder.start()
                points = len(fleet_assets) * points_per_asset
                messages = len(fleet_assets) * -(-points_per_asset // per_message)
            result = self.time_worker(name, w.proc, w.status, points, points, messages, log, FINALISED)
            if path == "live":
                feeder.join(60)
            return result

    def run_baseline(self, mode: str, points_per_asset: int, per_message: int) -> Result:
        settings, _ = self.fresh()
        points, messages = self.preload(settings, points_per_asset, per_message)
        if mode == "naive":  # its output topic: a stock cluster does not create topics on use
            ensure_topics(self.kafka, [TopicSpec(f"{settings.topics.telemetry}.naive-out", PARTITIONS)])
        port = free_port()
        log = self.workdir / f"{mode}.log"
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.baselines", mode, self.kafka.bootstrap,
                 settings.topics.telemetry, str(PARTITIONS), str(port), settings.app_id],
                stdout=log_file, stderr=log_file, cwd=REPO, env={**os.environ, **self.kafka.env()},
            )
        try:
            label = "Faust empty agent (floor)" if mode == "empty" else "naive Faust + River HST"
            target = messages if mode == "empty" else points
            return self.time_worker(f"{label}, {per_message} reading(s)/message", proc,
                                    lambda: fetch_status(port), target, points, messages, log)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # a Faust worker slow to leave its group: its run is timed
                proc.kill()
                proc.wait(10)

    def run_quix(self, python: Path, points_per_asset: int, per_message: int) -> Result:
        """The quix-streams + River peer (benchmarks/quix_peer.py) in its own interpreter."""
        settings, _ = self.fresh()
        # quix-streams derives its changelog topics from the source topic's retention, which
        # the embedded broker reports only where it was set explicitly
        set_topic_config(self.kafka, settings.topics.telemetry,
                         {"retention.ms": "-1", "retention.bytes": "-1"})
        points, messages = self.preload(settings, points_per_asset, per_message)
        out_topic = f"{settings.topics.telemetry}.quix-out"
        ensure_topics(self.kafka, [TopicSpec(out_topic, PARTITIONS)])
        status_file = self.workdir / f"{settings.app_id}-quix.json"
        log = self.workdir / "quix.log"
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                [str(python), str(REPO / "benchmarks" / "quix_peer.py"), self.kafka.bootstrap,
                 settings.topics.telemetry, out_topic, settings.app_id,
                 str(self.workdir / f"{settings.app_id}-state"), str(status_file)],
                stdout=log_file, stderr=log_file, cwd=self.workdir)

        def status() -> Any:
            try:
                return orjson.loads(status_file.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                return None

        try:
            return self.time_worker(f"quix-streams + River HST, {per_message} reading(s)/message",
                                    proc, status, points, points, messages, log)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def run_latency(self, rate: float, seconds: float, sensitivity: int) -> dict[str, float]:
        """Feed a fresh worker one reading per message at ``rate``; per published anomaly,
        produced → read (a reader consuming all along stamps each record as it arrives), and
        the worker's own due → published histogram (its p50/p99 bucket bounds)."""
        settings, inf = self.fresh(sensitivity=sensitivity)
        w = WorkerProcess(self.kafka, inf, self.workdir / "models", settings.app_id,
                          settings.topics.prefix, PARTITIONS, log_path=self.workdir / "lat.log")
        total = int(rate * seconds)
        per_asset = 40  # a full window (16) and then some, for every asset in the run
        assets = self.assets[: max(1, min(len(self.assets), total // per_asset))]
        # a one-point spike on every fourth asset, past its first full window: enough anomalies
        # at sensitivity 70 for a p99 (without them the normal feed gave 3–8)
        spikes = [Fault(a, "spike", 20 + i % 17, 1) for i, a in enumerate(assets) if i % 4 == 0]
        fleet = generate_fleet(assets, per_asset, START_MS, INTERVAL_MS, seed=2, faults=spikes)
        produced: dict[tuple[str, int], float] = {}
        arrived: dict[tuple[str, int], float] = {}
        stop = threading.Event()

        def read() -> None:
            consumer: Consumer = topic_reader(self.kafka, settings.topics.anomalies, PARTITIONS)
            try:
                while not stop.is_set():
                    for m in consumer.consume(500, 0.05):
                        key = m.key()
                        if m.error() is None and key:
                            _, asset, ts = key.decode().rsplit("/", 2)
                            arrived.setdefault((asset, int(ts)), time.time() * 1000)
            finally:
                consumer.close()

        with w:
            w.wait_ready(60)
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            producer = make_producer(self.kafka, **{"linger.ms": LATENCY_LINGER_MS})
            t0 = time.monotonic()
            for i, r in enumerate(fleet.readings):
                produce_readings(producer, settings.topics.telemetry, [r])
                produced[(r.asset_id, r.ts_ms)] = time.time() * 1000
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # pacing the load generator
            producer.flush(30)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                st = w.status() or {}
                if sum(st.get("counts", {}).get(k, 0) for k in FINALISED) >= len(fleet.readings):
                    break
                time.sleep(POLL_S)  # polling interval of a deadline-bounded wait
            time.sleep(0.5)  # the reader's last fetch of what was just published
            stop.set()
            reader.join(10)
            due = due_to_published(w.web_port)
        lat = np.asarray([arrived[k] - produced[k] for k in arrived if k in produced])
        if lat.size == 0:
            raise RuntimeError(f"latency at sensitivity {sensitivity}: no anomaly was published")
        # a point's slot closes (SPEC §5.2, event clock, delay 0) when the asset's next point,
        # one interval later, arrives: produced → read includes that wait by design; measured
        # from the closing point's send, what is left is the pipeline's own delay
        closing = np.asarray([arrived[(a, ts)] - produced[(a, ts + INTERVAL_MS)]
                              for a, ts in arrived if (a, ts + INTERVAL_MS) in produced])
        closed = {"closed_p50": float(np.percentile(closing, 50)),
                  "closed_p99": float(np.percentile(closing, 99))} if closing.size else {}
        return {"rate": rate, "sensitivity": float(sensitivity), "points": float(len(fleet.readings)),
                "anomalies": float(lat.size), "assets": float(len(assets)),
                "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                "max": float(lat.max()), "wait_ms": len(assets) / rate * 1000, **closed, **due}


def set_topic_config(kafka: KafkaConnection, topic: str, config: dict[str, str]) -> None:
    """Set a topic's configuration entries (incremental: the embedded broker has no legacy
    AlterConfigs)."""
    admin = AdminClient(kafka.client_config())
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(15)


def due_to_published(port: int) -> dict[str, float]:
    """p50/p99 of the worker's ``assetwatch_due_to_published_seconds`` histogram, in ms, as
    the upper bounds of the buckets they fall in (Prometheus' resolution)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # loopback
        text = resp.read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("assetwatch_due_to_published_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    bounds = sorted(buckets)
    count = buckets.get(float("inf"), 0.0)

    def quantile(q: float) -> float:
        return next((b * 1000 for b in bounds if buckets[b] >= q * count), float("nan"))

    return {"due_p50": quantile(0.5), "due_p99": quantile(0.99)} if count else {
        "due_p50": float("nan"), "due_p99": float("nan")}


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--broker", default=os.environ.get("ASSETWATCH_BROKER"))
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--apache-kafka", action="store_true",
                    help="run on Apache Kafka started from Maven Central's jars (needs Java, Maven)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each throughput row this many times and report the median")
    ap.add_argument("--memory-assets", type=int, default=10_000,
                    help="assets of the memory run (0: skip it)")
    ap.add_argument("--no-quix", action="store_true",
                    help="skip the quix-streams peer (it needs its own venv, .venv-peers)")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        if args.apache_kafka:
            jars = kafka_jars()
            if jars is None:
                raise SystemExit("--apache-kafka: Apache Kafka's jars are not cached and mvn is missing")
            args.broker = stack.enter_context(ApacheKafka(jars)).listeners["plaintext"]
        broker_name = (f"Apache Kafka {kafka_version()} (jars, KRaft, one node)" if args.apache_kafka
                       else f"the cluster at {args.broker}" if args.broker else "the embedded broker (Tansu)")
        results, latency = run_all(args)
    print(f"\nassetwatch benchmark, {time.strftime('%Y-%m-%d')}, {machine()}")
    print(f"on {broker_name}; {args.assets} assets, 4 signals, {PARTITIONS} partitions\n")
    print("| pipeline | points | messages | seconds | points/s | peak RSS (MB) |")
    print("|---|--:|--:|--:|--:|--:|")
    for r in results:
        print(f"| {r.name} | {r.points:,} | {r.messages:,} | {r.seconds:.2f} | {r.rate:,.0f} | "
              f"{r.peak_rss_mb:.0f} |")
    print("\nlatency, one reading per message at half the sustained single-reading rate "
          "(produced → read: a reader's arrival time of each anomaly; it includes the wait for "
          "the slot to close, i.e. for the asset's next point, sent 'slot wait' later; "
          "closing point → read: from that next point's send, the pipeline's own delay; "
          "due → published: the worker's histogram, bucket bounds)\n")
    print("| sensitivity | points/s | points | anomalies | slot wait | produced→read p50 | p99 | "
          "max | closing point→read p50 | p99 | due→published p50 | p99 |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for lat in latency:
        print(f"| {lat['sensitivity']:.0f} | {lat['rate']:,.0f} | {lat['points']:.0f} | "
              f"{lat['anomalies']:.0f} | {lat['wait_ms']:.0f} ms | {lat['p50']:.0f} ms | "
              f"{lat['p99']:.0f} ms | {lat['max']:.0f} ms | "
              f"{lat.get('closed_p50', float('nan')):.0f} ms | "
              f"{lat.get('closed_p99', float('nan')):.0f} ms | "
              f"≤ {lat['due_p50']:.0f} ms | ≤ {lat['due_p99']:.0f} ms |")


def run_all(args: argparse.Namespace) -> tuple[list[Result], list[dict[str, float]]]:
    """Every throughput run (the median of ``--repeat`` runs each), the 10,000-asset memory
    run, then the latency runs at half the sustained single-reading rate."""
    single_pts, batch_pts, naive_pts = (30, 300, 10) if not args.quick else (5, 50, 3)
    settings = Settings.from_env(os.environ, broker=args.broker)
    peers = None if args.no_quix else peer_python()
    with tempfile.TemporaryDirectory() as tmp, resolved_broker(settings) as kafka:
        b = Bench(kafka, args.assets, Path(tmp))
        runs: list[Callable[[], Result]] = [
            lambda: b.run_baseline("empty", single_pts, 1),
            lambda: b.run_assetwatch(single_pts, 1),
            lambda: b.run_assetwatch(batch_pts, 100),
            lambda: b.run_assetwatch(batch_pts, 100, path="prefill"),
            lambda: b.run_baseline("naive", naive_pts, 1),
            lambda: b.run_baseline("naive", naive_pts * 10, 100),
        ]
        if peers is not None:
            runs += [lambda: b.run_quix(peers, naive_pts, 1),
                     lambda: b.run_quix(peers, naive_pts * 10, 100)]
        results = [median_of(run, args.repeat) for run in runs]
        if args.memory_assets:
            many = [f"mem-{i:05d}" for i in range(args.memory_assets)]
            results.append(b.run_assetwatch(
                20 if not args.quick else 17, 20, assets=many,
                label=f"assetwatch, {len(many):,} assets (memory), 20 readings/message"))
        sustained = results[1].rate
        latency = [b.run_latency(rate=max(sustained / 2, 50), seconds=10 if not args.quick else 3,
                                 sensitivity=sensitivity) for sensitivity in (70, 100)]
    return results, latency


def median_of(run: Callable[[], Result], repeat: int) -> Result:
    """The run of median rate among ``repeat`` runs."""
    results = sorted((run() for _ in range(max(repeat, 1))), key=lambda r: r.rate)
    return results[len(results) // 2]


PEERS_VENV = REPO / ".venv-peers"
#: the peer's own environment: quix-streams pins confluent-kafka < 2.13, assetwatch needs ≥ 2.16
PEER_PACKAGES = ("quixstreams==3.28.1", "river==0.26.1")


def peer_python() -> Path | None:
    """The interpreter of the quix-streams peer, its virtual environment made on first use
    (None, with a line saying why, where it cannot be installed)."""
    python = PEERS_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"quix-streams peer skipped: cannot install {' '.join(PEER_PACKAGES)} "
              f"into {PEERS_VENV} ({exc})", file=sys.stderr)
        return None
    return python


if __name__ == "__main__":
    main()
