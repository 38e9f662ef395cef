"""``assetwatch demo``: the whole pipeline on a fresh machine in about 20 seconds.

Embedded broker (or the one given) → a model trained on generated normal pump data →
a worker → generated readings with injected faults (spike, drift, stuck sensor) streamed
in → anomalies printed as they are published, and beside them the alerts that group them
(opened, then resolved once the fault is over; docs/alerts.md) → a summary of what was caught
and alerted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import orjson

from agents.broker import ensure_topics, resolved_broker
from agents.connection import KafkaConnection
from agents.kafka_io import make_producer, poll_values, produce_readings, topic_reader
from agents.model_store import ModelStore
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess
from streams.alerts import AlertConfig, resolves_at_ms
from streams.codec import format_ts
from streams.model import ModelParams, fit_model
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INTERVAL_MS = 1_000
#: The demo's alert configuration (SPEC §7): one group per asset and fault. A fault's anomalies
#: come in runs a few points apart (a drift crosses the threshold on and off at first), and
#: the detector's window still holds the fault for a while after it; 10 points (10 s of demo
#: data) joins a fault's runs into one group, which resolves 11 quiet points after its last
#: anomaly.
DEMO_ALERT = AlertConfig("pump-fault", correlation_points=10, mode="group", scope="asset")
#: How long the demo waits for the last anomalies and alert resolutions once all is scored.
SETTLE_S = 15.0


@dataclass(frozen=True)
class DemoOptions:
    assets: int = 4
    points: int = 900
    rate: float = 400.0
    seed: int = 7
    window: int = 16


def demo_faults(assets: list[str], points: int) -> list[Fault]:
    """One fault of each kind on the 2nd, 3rd and 4th pump; the 1st stays healthy."""
    kinds = [("spike", 0.33, 3), ("drift", 0.40, 0.33), ("stuck", 0.55, 0.09)]
    faults = []
    for asset, (kind, at, length) in zip(assets[1:], kinds, strict=False):
        n = int(length) if isinstance(length, int) else int(points * length)
        faults.append(Fault(asset, kind, int(points * at), max(n, 1)))  # type: ignore[arg-type]
    return faults


def run_demo(settings: Settings, opts: DemoOptions, out: TextIO = sys.stdout) -> bool:
    """Run the demo; True when every injected fault was caught and its alert resolved."""
    run = uuid.uuid4().hex[:6]
    settings = replace(settings, app_id=f"demo-{run}", topics=TopicNames(f"demo-{run}"),
                       partitions=4)
    workdir = Path(tempfile.mkdtemp(prefix="assetwatch-demo-"))
    try:
        with resolved_broker(settings) as kafka:
            return _run(settings, opts, kafka, workdir, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class AlertSeen:
    """One alert (a group) as the demo saw it: its latest record, and its updates folded."""

    record: dict[str, Any]
    opened: bool = False
    resolved: bool = False
    updates: int = 0


@dataclass
class Feed:
    """The records read while the demo runs; the reader thread changes it under ``changed``."""

    anomalies: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, AlertSeen] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate`` holds (checked at every change) or ``timeout_s`` passes."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout_s)

    def unresolved(self, end_ms: int) -> list[AlertSeen]:
        """Open alerts that a stream ending at ``end_ms`` has enough quiet points to resolve."""
        x = DEMO_ALERT.correlation_points
        return [a for a in self.alerts.values()
                if not a.resolved and resolves_at_ms(a.record["last_ts"], INTERVAL_MS, x) <= end_ms]


def _run(settings: Settings, opts: DemoOptions, kafka: KafkaConnection, workdir: Path, out: TextIO) -> bool:
    say = lambda msg: print(msg, file=out, flush=True)  # noqa: E731
    assets = [f"pump-{i + 1}" for i in range(opts.assets)]
    faults = demo_faults(assets, opts.points)

    say(f"training a model on {8 * 2000:,} generated readings of healthy pumps …")
    model = fit_model(training_rows(8, 2000, seed=opts.seed + 1000),
                      ModelParams(model_id="demo-pumps", signals=SIGNALS, window_size=opts.window))
    store = ModelStore(workdir / "models")
    store.save(model)
    # an accelerated feed: the inference clock is event time (SPEC §5.2), idle after 1 s
    inference = {"inference_id": "demo", "model_id": model.model_id,
                 "topic": settings.topics.telemetry, "sensitivity": 70,
                 "clock": "event", "idle_timeout_ms": 1_000, "alerts": [DEMO_ALERT.to_dict()]}
    (workdir / "inferences.json").write_bytes(orjson.dumps([inference]))
    ensure_topics(kafka, topic_specs(settings))

    worker = WorkerProcess(kafka, workdir / "inferences.json", workdir / "models",
                           settings.app_id, settings.topics.prefix, settings.partitions,
                           log_path=workdir / "worker.log")
    with worker:
        web = f"http://127.0.0.1:{worker.web_port}"
        say(f"starting a worker (status {web}/assetwatch/status/, metrics {web}/metrics) …")
        worker.wait_ready(60)
        fleet = generate_fleet(assets, opts.points, START_MS, INTERVAL_MS, opts.seed, faults)
        for f in faults:
            lo, hi = f.ts_range(START_MS, INTERVAL_MS)
            say(f"  injecting {f.kind:5} on {f.asset_id} from {format_ts(lo)} to {format_ts(hi)}")
        x = DEMO_ALERT.correlation_points
        say(f"alerts \"{DEMO_ALERT.name}\": a pump's anomalies at most {x} points apart are one "
            f"group, resolved after {x + 1} points with none (updates are folded)")
        say(f"streaming {len(fleet.readings):,} readings of {len(assets)} pumps "
            f"({len(SIGNALS)} signals) at {opts.rate:.0f}/s; anomalies and alerts as they are "
            f"published:")

        feed = Feed()
        end_ms = max(r.ts_ms for r in fleet.readings)
        reader_done = threading.Event()
        reader = threading.Thread(
            target=_print_records, args=(kafka, settings, feed, reader_done, say), daemon=True
        )
        reader.start()
        try:
            counts = _stream(worker, kafka, settings, fleet.readings, opts.rate)
            # every anomaly read, every group the stream can resolve resolved (or time is up)
            feed.wait_until(lambda: len(feed.anomalies) >= counts.get("anomalies", 0)
                            and not feed.unresolved(end_ms), SETTLE_S)
        finally:
            reader_done.set()
            reader.join(5)
    with feed.changed:
        return _summary(say, len(fleet.readings), counts, feed, faults, end_ms)


def _stream(worker: WorkerProcess, kafka: KafkaConnection, settings: Settings, readings: list[Any],
            rate: float) -> dict[str, int]:
    """Send the readings at ``rate`` per second; wait until the worker has scored them all."""
    producer = make_producer(kafka)
    chunk = max(1, int(rate / 10))
    t0 = time.monotonic()
    for i in range(0, len(readings), chunk):
        produce_readings(producer, settings.topics.telemetry, readings[i:i + chunk])
        producer.poll(0)
        ahead = t0 + (i + chunk) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)  # pacing the simulated producer, not synchronisation
    producer.flush(10)
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = (worker.status() or {}).get("counts", {})
        # every reading finalised: the last of each pump once it has been idle for a second
        if counts.get("scored", 0) + counts.get("warming_up", 0) >= len(readings):
            break
        time.sleep(0.1)  # polling interval of the worker's status (another process)
    return counts


def _print_records(kafka: KafkaConnection, settings: Settings, feed: Feed, done: threading.Event,
                   say: Callable[[str], None]) -> None:
    """Read the anomaly and alert topics until ``done``, recording and printing what is new."""
    readers = [(topic_reader(kafka, settings.topics.anomalies, settings.partitions),
                _take_anomaly),
               (topic_reader(kafka, settings.topics.alerts, settings.partitions),
                _take_alert)]
    try:
        while not done.is_set():
            for consumer, take in readers:
                batch = list(poll_values(consumer, 0.1))
                with feed.changed:  # printed under the lock: the summary comes after them
                    for key, value in batch:
                        if key is not None and value is not None:
                            line = take(feed, key.decode(), orjson.loads(value))
                            if line is not None:
                                say(line)
                    feed.changed.notify_all()
    finally:
        for consumer, _ in readers:
            consumer.close()


def _take_anomaly(feed: Feed, key: str, a: dict[str, Any]) -> str | None:
    """Record an anomaly record; its line, or None for one already seen."""
    if key in feed.anomalies:
        return None
    feed.anomalies[key] = a
    top = max(a["contributions"].items(), key=lambda kv: kv[1])
    return (f"  ANOMALY {a['asset_id']:8} {a['ts_iso']}  severity {a['severity']:.2f}  "
            f"score {a['score']:7.2f}  mostly {top[0]} ({top[1]:.0%})")


def _take_alert(feed: Feed, key: str, r: dict[str, Any]) -> str | None:
    """Record an alert record; its line, or None when folded (an update) or already seen."""
    seen = feed.alerts.get(key)
    if seen is None:
        seen = feed.alerts[key] = AlertSeen(r)
    elif seen.resolved or r["anomaly_count"] < seen.record["anomaly_count"]:
        return None  # re-delivered
    state = r["state"]
    if state == "updated":
        if r["anomaly_count"] > seen.record["anomaly_count"]:
            seen.updates += 1
        seen.record = r
        return None
    if state == "open" and seen.opened:
        return None
    seen.record = r
    seen.opened = True
    seen.resolved = state in ("resolved", "single")
    return _alert_line(r, seen.updates)


def _alert_line(r: dict[str, Any], updates: int) -> str:
    """One alert record as a demo line: OPEN with its first anomaly, RESOLVED with the group."""
    head = f"  ALERT   {r['state'].upper():9} {','.join(r['assets']):8} {r['alert_config']}  "
    signals = ", ".join(r["top_signals"]) or "no signal"
    if r["state"] == "open":
        return (head + f"from {format_ts(r['first_ts'])}  severity {r['max_severity']:.2f}  "
                f"mostly {signals}")
    n = r["anomaly_count"]
    folded = f"  ({updates} update{'s' * (updates != 1)} folded)" if updates else ""
    return (head + f"from {format_ts(r['first_ts'])} to {format_ts(r['last_ts'])[11:]}  "
            f"{n} anomal{'ies' if n != 1 else 'y'}, max severity {r['max_severity']:.2f}, "
            f"mostly {signals}{folded}")


def _summary(say: Callable[[str], None], sent: int, counts: dict[str, int], feed: Feed,
             faults: list[Fault], end_ms: int) -> bool:
    """Print what was sent, scored, caught and alerted; True when every fault was caught and
    is covered by an alert that resolved."""
    seen, alerts = feed.anomalies, list(feed.alerts.values())
    by_asset: dict[str, list[int]] = defaultdict(list)
    for a in seen.values():
        by_asset[a["asset_id"]].append(a["ts"])
    say("")
    say("summary")
    say(f"  readings sent        {sent:8,}")
    say(f"  received by worker   {counts.get('received', 0):8,}")
    say(f"  scored               {counts.get('scored', 0):8,}   "
        f"(warming up: {counts.get('warming_up', 0):,})")
    say(f"  anomalies published  {len(seen):8,}")
    say(f"  alerts opened        {len(alerts):8,}   resolved {sum(a.resolved for a in alerts):,} "
        f"({sum(a.updates for a in alerts):,} updates folded)")
    ok = True
    fault_ts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for f in faults:
        lo, hi = f.ts_range(START_MS, INTERVAL_MS)
        hi_tol = hi + 16 * INTERVAL_MS  # the window still holds the fault just after it
        fault_ts[f.asset_id].append((lo, hi_tol))
        hits = sorted(t for t in by_asset[f.asset_id] if lo <= t < hi_tol)
        if hits:
            delay = (hits[0] - lo) // INTERVAL_MS
            say(f"  CAUGHT  {f.kind:5} on {f.asset_id}: {len(hits)} anomalies, "
                f"first {delay} points after onset")
        else:
            ok = False
            say(f"  MISSED  {f.kind:5} on {f.asset_id}")
        ok = _say_coverage(say, f, lo, hi_tol, feed) and ok
    outside = [a for a in alerts
               if not any(lo <= a.record["last_ts"] and a.record["first_ts"] < hi
                          for asset in a.record["assets"] for lo, hi in fault_ts[asset])]
    false_alarms = sum(
        1 for a in seen.values()
        if not any(lo <= a["ts"] < hi for lo, hi in fault_ts[a["asset_id"]])
    )
    say(f"  anomalies outside any fault: {false_alarms} "
        f"({false_alarms / max(counts.get('scored', 0), 1):.2%} of scored points)")
    still_open = [a for a in outside if not a.resolved]
    too_late = [a for a in still_open if a not in feed.unresolved(end_ms)]
    if still_open:
        state = (f"{len(still_open)} still open, {len(too_late)} of them too near the end of the "
                 f"stream to resolve")
    else:
        state = "all resolved"
    say(f"  alerts outside any fault: {len(outside)}" + (f" ({state})" if outside else ""))
    return ok


def _say_coverage(say: Callable[[str], None], f: Fault, lo: int, hi: int, feed: Feed) -> bool:
    """Say which alerts cover the fault at ``[lo, hi)``; whether there is one, all resolved."""
    covering = [a for a in feed.alerts.values()
                if f.asset_id in a.record["assets"]
                and lo <= a.record["last_ts"] and a.record["first_ts"] < hi]
    if not covering:
        say(f"  NO ALERT {f.kind:5} on {f.asset_id}")
        return False
    n = len(covering)
    first = min(a.record["first_ts"] for a in covering)
    count = sum(a.record["anomaly_count"] for a in covering)
    open_ = sum(not a.resolved for a in covering)
    state = "opened and resolved" if not open_ else f"{open_} still open"
    say(f"  ALERTED {f.kind:5} on {f.asset_id}: {n} alert{'s' * (n != 1)} ({state}), "
        f"from {format_ts(first)}, {count} anomalies")
    return not open_
