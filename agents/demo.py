"""``assetwatch demo``: the whole pipeline on a fresh machine in about a minute.

Embedded broker (or the one given) → a model trained on generated normal pump data →
a worker → generated readings with injected faults (spike, drift, stuck sensor) streamed
in → anomalies printed as they are published → a summary of what was caught.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import orjson

from agents.broker import ensure_topics, resolved_broker
from agents.kafka_io import make_producer, poll_values, produce_readings, topic_reader
from agents.model_store import ModelStore
from agents.settings import Settings, TopicNames
from agents.topics import topic_specs
from agents.worker_process import WorkerProcess
from streams.codec import format_ts
from streams.model import ModelParams, fit_model
from streams.simulate import SIGNALS, Fault, generate_fleet, training_rows

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INTERVAL_MS = 1_000


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
    """Run the demo; True when every injected fault was caught."""
    run = uuid.uuid4().hex[:6]
    settings = replace(settings, app_id=f"demo-{run}", topics=TopicNames(f"demo-{run}"),
                       partitions=4)
    workdir = Path(tempfile.mkdtemp(prefix="assetwatch-demo-"))
    try:
        with resolved_broker(settings.broker) as bootstrap:
            return _run(settings, opts, bootstrap, workdir, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(settings: Settings, opts: DemoOptions, bootstrap: str, workdir: Path, out: TextIO) -> bool:
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
                 "clock": "event", "idle_timeout_ms": 1_000}
    (workdir / "inferences.json").write_bytes(orjson.dumps([inference]))
    ensure_topics(bootstrap, topic_specs(settings))

    worker = WorkerProcess(bootstrap, workdir / "inferences.json", workdir / "models",
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
        say(f"streaming {len(fleet.readings):,} readings of {len(assets)} pumps "
            f"({len(SIGNALS)} signals) at {opts.rate:.0f}/s; anomalies as they are published:")

        seen: dict[str, dict[str, Any]] = {}
        reader_done = threading.Event()
        reader = threading.Thread(
            target=_print_anomalies, args=(bootstrap, settings, seen, reader_done, say), daemon=True
        )
        reader.start()
        try:
            counts = _stream(worker, bootstrap, settings, fleet.readings, opts.rate, seen)
        finally:
            reader_done.set()
            reader.join(5)
    return _summary(say, len(fleet.readings), counts, seen, faults, assets)


def _stream(worker: WorkerProcess, bootstrap: str, settings: Settings, readings: list[Any],
            rate: float, seen: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Send the readings at ``rate`` per second; wait until the worker has them all."""
    producer = make_producer(bootstrap)
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
        time.sleep(0.1)  # polling interval of a deadline-bounded wait
    deadline = time.monotonic() + 10
    while len(seen) < counts.get("anomalies", 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval of a deadline-bounded wait
    return counts


def _print_anomalies(bootstrap: str, settings: Settings, seen: dict[str, dict[str, Any]],
                     done: threading.Event, say: Any) -> None:
    consumer = topic_reader(bootstrap, settings.topics.anomalies, settings.partitions)
    try:
        while not done.is_set():
            for key, value in poll_values(consumer, 0.2):
                if key is None or value is None or key.decode() in seen:
                    continue
                a = orjson.loads(value)
                seen[key.decode()] = a
                top = max(a["contributions"].items(), key=lambda kv: kv[1])
                say(f"  ANOMALY {a['asset_id']:8} {a['ts_iso']}  severity {a['severity']:.2f}  "
                    f"score {a['score']:7.2f}  mostly {top[0]} ({top[1]:.0%})")
    finally:
        consumer.close()


def _summary(say: Any, sent: int, counts: dict[str, int], seen: dict[str, dict[str, Any]],
             faults: list[Fault], assets: list[str]) -> bool:
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
    caught_all = True
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
            caught_all = False
            say(f"  MISSED  {f.kind:5} on {f.asset_id}")
    false_alarms = sum(
        1 for a in seen.values()
        if not any(lo <= a["ts"] < hi for lo, hi in fault_ts[a["asset_id"]])
    )
    say(f"  anomalies outside any fault: {false_alarms} "
        f"({false_alarms / max(counts.get('scored', 0), 1):.2%} of scored points)")
    return caught_all
