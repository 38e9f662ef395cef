"""The scoring engine of one worker: a batch of raw telemetry messages in, outputs and state out.

Pure: the glue hands in messages (topic, partition, offset, key, bytes) and a ``load``
function that returns an asset's last stored snapshot; the engine returns what to publish
(anomalies, dead-letter rejections) and the snapshots to store, each with the partition it
belongs to (the partition of the telemetry it came from, so that state, input and output are
co-partitioned). Hot state stays in memory between batches; :meth:`Engine.drop_partitions`
forgets the state of partitions this worker no longer owns.

>>> import numpy as np
>>> from streams.model import fit_model, ModelParams
>>> from streams.inference import InferenceConfig
>>> from streams.scoring import AssetScorer
>>> model = fit_model(np.random.default_rng(0).normal(size=(300, 1)),
...                   ModelParams(model_id="m", signals=("v",), window_size=4))
>>> engine = Engine([AssetScorer(InferenceConfig("inf", "m", "tele"), model)], load=lambda k: None)
>>> t0 = 1_767_225_600_000
>>> msgs = [Message("tele", 0, i, b"a", b'{"asset_id":"a","ts":%d,"signals":{"v":0.1}}' % (t0 + i))
...         for i in range(5)]
>>> out = engine.process_batch(msgs + [Message("tele", 0, 5, b"a", b"not json")])
>>> out.counts["received"], out.counts["scored"], out.counts["invalid"], len(out.rejections)
(6, 1, 1, 1)
>>> sorted(out.snapshots)
['inf/a']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.decode import DecodeLimits, decode_telemetry
from streams.records import Anomaly, Rejection
from streams.scoring import AssetScorer, AssetState

Snapshot = dict[str, Any]
Loader = Callable[[str], Snapshot | None]


@dataclass(frozen=True, slots=True)
class Message:
    """One raw record as it came off a telemetry topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchOutput:
    """What a batch produced: to publish, to store, and what happened, counted."""

    anomalies: list[tuple[int, Anomaly]] = field(default_factory=list)
    rejections: list[tuple[Message, Rejection]] = field(default_factory=list)
    snapshots: dict[str, tuple[int, Snapshot]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


def state_key(inference_id: str, asset_id: str) -> str:
    """The table key of one asset's state within one inference."""
    return f"{inference_id}/{asset_id}"


class Engine:
    """Routes readings to the inferences that want them and keeps their per-asset state."""

    def __init__(
        self,
        scorers: Iterable[AssetScorer],
        load: Loader,
        limits: DecodeLimits | None = None,
    ) -> None:
        self.scorers_by_topic: dict[str, list[AssetScorer]] = {}
        for scorer in scorers:
            self.scorers_by_topic.setdefault(scorer.inference.topic, []).append(scorer)
        self.load = load
        self.limits = limits or DecodeLimits()
        self.states: dict[str, tuple[int, AssetState]] = {}

    @property
    def topics(self) -> list[str]:
        return sorted(self.scorers_by_topic)

    def process_batch(self, messages: Sequence[Message]) -> BatchOutput:
        out = BatchOutput()
        counts = out.counts
        dirty: dict[str, int] = {}
        for msg in messages:
            decoded = decode_telemetry(msg.value, msg.key, self.limits)
            if isinstance(decoded, Rejection):
                counts["received"] += 1
                counts["invalid"] += 1
                out.rejections.append((msg, decoded))
                continue
            counts["received"] += len(decoded)
            scorers = self.scorers_by_topic.get(msg.topic, ())
            for reading in decoded:
                for scorer in scorers:
                    if not scorer.inference.wants(reading.asset_id):
                        continue
                    key = state_key(scorer.inference.inference_id, reading.asset_id)
                    state = self._state(key, msg.partition, scorer)
                    outcome = scorer.process(state, reading)
                    counts[outcome.kind] += 1
                    if outcome.kind == "duplicate":
                        continue
                    if outcome.filled:
                        counts["filled"] += 1
                    dirty[key] = msg.partition
                    if outcome.anomaly is not None:
                        counts["anomalies"] += 1
                        out.anomalies.append((msg.partition, outcome.anomaly))
        for key, partition in dirty.items():
            out.snapshots[key] = (partition, self.states[key][1].snapshot())
        return out

    def _state(self, key: str, partition: int, scorer: AssetScorer) -> AssetState:
        held = self.states.get(key)
        if held is not None and held[0] == partition:
            return held[1]
        snap = self.load(key)
        state = scorer.restore(snap) if snap is not None else scorer.new_state()
        self.states[key] = (partition, state)
        return state

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget the in-memory state of assets in partitions no longer owned; return how many."""
        gone = set(partitions)
        keys = [k for k, (p, _) in self.states.items() if p in gone]
        for k in keys:
            del self.states[k]
        return len(keys)
