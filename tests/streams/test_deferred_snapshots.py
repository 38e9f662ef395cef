"""States stored on a cadence (``Engine.defer_snapshots``): the glue takes the snapshots of
every state changed since the last time and commits those batches' input only once they are
stored. What is stored is what per-batch snapshots would have stored last, and a crash before
the snapshots are stored replays the uncommitted input to the same outputs."""

from __future__ import annotations

from typing import Any

from streams.checkpoint import checkpoint_key
from streams.codec import encode_telemetry
from streams.engine import Engine, Message
from streams.inference import InferenceConfig
from streams.model import Model
from streams.records import Reading
from streams.scoring import AssetScorer
from streams.simulate import Fault, generate_fleet

T0 = 1_767_225_600_000
S = 1_000
ASSETS = ["p", "q", "r"]


def engine(model: Model, store: dict[str, Any], deferred: bool) -> Engine:
    cfg = InferenceConfig("inf", "m", "tele", clock="event", idle_timeout_ms=1_000)
    e = Engine([AssetScorer(cfg, model)], load=store.get, partitions=1)
    e.defer_snapshots = deferred
    return e


def messages() -> list[Message]:
    readings: list[Reading] = generate_fleet(
        ASSETS, 40, T0, S, seed=9, faults=[Fault("q", "spike", 30, 1), Fault("r", "spike", 12, 1)]
    ).readings
    return [Message("tele", 0, i, r.asset_id.encode(), encode_telemetry([r]))
            for i, r in enumerate(readings)]


def batches(msgs: list[Message], size: int) -> list[list[Message]]:
    return [msgs[i:i + size] for i in range(0, len(msgs), size)]


def test_the_snapshots_taken_are_those_per_batch_snapshots_would_have_stored_last(
        model: Model) -> None:
    per_batch: dict[str, Any] = {}
    deferred_store: dict[str, Any] = {}
    now, later = engine(model, per_batch, False), engine(model, deferred_store, True)
    for batch in batches(messages(), 7):
        per_batch.update({k: snap for k, (_, snap) in now.process_batch(batch).snapshots.items()})
        assert later.process_batch(batch).snapshots == {}
    deferred_store.update({k: snap for k, (_, snap) in later.take_snapshots().items()})
    assert deferred_store == per_batch and sorted(per_batch) == [f"inf/{a}" for a in ASSETS]


def test_a_crash_before_the_snapshots_are_stored_replays_to_the_same_anomalies(
        model: Model) -> None:
    store: dict[str, Any] = {}
    msgs = messages()
    head, tail = msgs[:45], msgs[45:]
    first = engine(model, store, True)
    first.process_batch(head)
    store.update({k: snap for k, (_, snap) in first.take_snapshots().items()})
    store[checkpoint_key("tele", 0)] = head[-1].offset + 1  # committed up to here
    published = [a for b in batches(tail, 10) for _, a in first.process_batch(b).anomalies]
    # killed before its snapshots were taken: the next owner restores the stored states and
    # reads from the committed offset again
    again = engine(model, store, True)
    replayed = [a for b in batches(tail, 10) for _, a in again.process_batch(b).anomalies]
    assert published and [a.key for a in replayed] == [a.key for a in published]
    assert replayed == published


def test_states_of_revoked_partitions_are_not_taken(model: Model) -> None:
    store: dict[str, Any] = {}
    e = engine(model, store, True)
    e.owned = {0}
    e.process_batch(messages()[:6])
    e.drop_partitions({0})
    assert e.take_snapshots() == {}
