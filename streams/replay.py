"""Replay (SPEC §6, issue 14): the pure rules of re-scoring a past range.

A replay re-runs an Active inference over the half-open range ``[start, end)`` with its
current settings and model, apart from the live stream, and overwrites that range's results.
This module holds what does not need Kafka:

* :func:`check_range` — the range's rules (``start < end``; within what has been finalised;
  at most :data:`MAX_REPLAY_POINTS` data points, counted as ``ceil((end - start) / Δ)``);
* :func:`keys_to_tombstone` — which earlier anomaly keys in the range no longer stand;
* :class:`ReplayState` — the replay's life: Accepted → Running(done/total) → Succeeded |
  Failed(reason), with :meth:`ReplayState.abandoned` for a worker that stopped mid-replay
  (never Running for ever).

>>> check_range(0, 2_000_000, interval_ms=1_000, finalised_ms=5_000_000)
2000
>>> r = ReplayState.accepted("r1", "inf", 0, 2_000_000, total=2000, at_ms=1)
>>> r = r.running(at_ms=2).progressed(500, at_ms=3)
>>> r.status, r.progress
('Running', '500/2000')
>>> r.succeeded(at_ms=4).status
'Succeeded'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from streams.records import Anomaly, Reading, anomaly_key
from streams.scoring import AssetScorer, AssetState

#: The most data points (range / Δ) one replay may cover (SPEC §6).
MAX_REPLAY_POINTS: Final = 2_000

ReplayStatus = Literal["Accepted", "Running", "Succeeded", "Failed"]
TERMINAL: Final = ("Succeeded", "Failed")
#: A time after every slot: finalising at it scores everything pending.
FOREVER_MS: Final = 2**62


def replay_points(start_ms: int, end_ms: int, interval_ms: int) -> int:
    """How many data points ``[start, end)`` holds at one every ``interval_ms``.

    >>> replay_points(0, 10_000, 1_000), replay_points(0, 10_001, 1_000)
    (10, 11)
    """
    return -(-(end_ms - start_ms) // interval_ms)


def check_range(start_ms: int, end_ms: int, interval_ms: int, finalised_ms: int | None) -> int:
    """The number of data points of ``[start, end)``; ``ValueError`` says why it is refused.

    ``finalised_ms``: the inference's finalised bound — every slot before it has been scored
    (``None``: nothing finalised yet). The range must end at or before it.

    >>> check_range(0, 2_001_000, 1_000, 10**9)
    Traceback (most recent call last):
    ...
    ValueError: the range holds 2001 data points; a replay covers at most 2000
    >>> check_range(5, 5, 1_000, 10**9)
    Traceback (most recent call last):
    ...
    ValueError: start 5 must be before end 5
    >>> check_range(0, 9_000, 1_000, 8_000)
    Traceback (most recent call last):
    ...
    ValueError: the range must lie within what has been finalised: it ends at 9000, finalised up to 8000
    """
    if interval_ms <= 0:
        raise ValueError(f"the model's interval must be positive, got {interval_ms}")
    if start_ms < 0:
        raise ValueError(f"start {start_ms} must not be negative")
    if start_ms >= end_ms:
        raise ValueError(f"start {start_ms} must be before end {end_ms}")
    if finalised_ms is None:
        raise ValueError("nothing has been finalised yet; there is no range to replay")
    if end_ms > finalised_ms:
        raise ValueError("the range must lie within what has been finalised: it ends at "
                         f"{end_ms}, finalised up to {finalised_ms}")
    points = replay_points(start_ms, end_ms, interval_ms)
    if points > MAX_REPLAY_POINTS:
        raise ValueError(f"the range holds {points} data points; a replay covers at most "
                         f"{MAX_REPLAY_POINTS}")
    return points


def parse_anomaly_key(key: str) -> tuple[str, str, int] | None:
    """``(inference, asset, ts)`` of an anomaly key, ``None`` for anything else.

    Inference ids have no ``/``; an asset id may, so the timestamp is the last part.

    >>> parse_anomaly_key("inf/pump/7/1000"), parse_anomaly_key("nope")
    (('inf', 'pump/7', 1000), None)
    """
    head, sep, ts = key.rpartition("/")
    inference, sep2, asset = head.partition("/")
    if not sep or not sep2 or not inference or not asset:
        return None
    try:
        return inference, asset, int(ts)
    except ValueError:
        return None


def in_range(key: str, inference_id: str, start_ms: int, end_ms: int,
             assets: frozenset[str] = frozenset()) -> bool:
    """Whether an anomaly key is the inference's, in ``[start, end)`` (and of ``assets``, if given).

    >>> in_range("inf/p/5", "inf", 0, 10), in_range("inf/p/10", "inf", 0, 10)
    (True, False)
    """
    parsed = parse_anomaly_key(key)
    if parsed is None:
        return False
    inf, asset, ts = parsed
    return (inf == inference_id and start_ms <= ts < end_ms
            and (not assets or asset in assets))


def keys_to_tombstone(existing: Iterable[str], republished: Iterable[str], inference_id: str,
                      start_ms: int, end_ms: int,
                      assets: frozenset[str] = frozenset()) -> list[str]:
    """The earlier anomaly keys in the range that the replay did not republish, sorted.

    ``existing``: the keys whose latest value on the anomalies topic is an anomaly (not a
    tombstone); keys outside the inference, the range or ``assets`` (if given) are left alone.

    >>> keys_to_tombstone(["i/a/1", "i/a/2", "i/a/99", "j/a/1"], ["i/a/2", "i/a/3"], "i", 0, 10)
    ['i/a/1']
    """
    kept = set(republished)
    return sorted({k for k in existing
                   if k not in kept and in_range(k, inference_id, start_ms, end_ms, assets)})


def latest_standing(records: Iterable[tuple[str, bool]]) -> set[str]:
    """The keys whose latest record is an anomaly, from ``(key, is_tombstone)`` in log order.

    >>> sorted(latest_standing([("a", False), ("b", False), ("a", True), ("c", True)]))
    ['b']
    """
    standing: set[str] = set()
    for key, tombstone in records:
        if tombstone:
            standing.discard(key)
        else:
            standing.add(key)
    return standing


def replay_id_of(inference_id: str, start_ms: int, end_ms: int,
                 assets: Iterable[str] = ()) -> str:
    """A replay's id: the inference, the range and, for a replay of some assets only, a digest
    of their names. Deterministic, so the anomalies a replay republishes (their ``replay_id``)
    are the same records when the same range is replayed again: replaying twice leaves the
    topic as replaying once.

    >>> replay_id_of("inf", 0, 5000), replay_id_of("inf", 0, 5000, ["pump-1"])
    ('inf/replay/0-5000', 'inf/replay/0-5000/assets-307e6f79')
    """
    rid = f"{inference_id}/replay/{start_ms}-{end_ms}"
    names = sorted(set(assets))
    if not names:
        return rid
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:8]
    return f"{rid}/assets-{digest}"


def range_scorer(scorer: AssetScorer, start_ms: int) -> AssetScorer:
    """A scorer like the live one (settings, model, epoch) that starts scoring at ``start_ms``:
    its fresh states take the points before ``start_ms`` into the window only, as a live start
    pre-fills, and the live scorer's states are never touched."""
    return AssetScorer(replace(scorer.inference, start_ms=start_ms), scorer.model, scorer.epoch)


def score_range(scorer: AssetScorer, readings: Iterable[Reading], start_ms: int, end_ms: int,
                replay_id: str, assets: frozenset[str] = frozenset()) -> tuple[list[Anomaly], int]:
    """Score ``[start, end)`` from scratch: ``(anomalies, points done)``.

    ``readings``: the inference's readings from ``scorer.history_from_ms(start_ms)`` up to
    ``end_ms`` (others are ignored), any order; each asset gets a fresh state of
    :func:`range_scorer`, the points go through the same slots (fill, gaps, duplicates) as
    live, and every slot before ``end_ms`` is finalised. The anomalies carry ``replay_id``
    (so no alert is raised for them, :mod:`streams.alerts`). ``assets``: score only these
    (of the inference's).
    """
    rs = range_scorer(scorer, start_ms)
    wanted = replay_assets(scorer.inference.assets, assets)
    first = rs.history_from_ms(start_ms)
    states: dict[str, AssetState] = {}
    for r in sorted(readings, key=lambda r: (r.asset_id, r.ts_ms)):
        if not first <= r.ts_ms < end_ms or (wanted and r.asset_id not in wanted):
            continue
        state = states.get(r.asset_id)
        if state is None:
            state = states[r.asset_id] = rs.new_state()
        rs.accept(state, r)
    anomalies: list[Anomaly] = []
    done = 0
    for asset in sorted(states):
        for out in rs.finalise(states[asset], FOREVER_MS):
            if not start_ms <= out.ts_ms < end_ms:
                continue
            done += out.kind == "scored"
            if out.anomaly is not None:
                anomalies.append(replace(out.anomaly, replay_id=replay_id))
    return anomalies, done


def replay_assets(inference_assets: frozenset[str], asked: frozenset[str]) -> frozenset[str]:
    """The assets a replay covers (empty: all of them): those asked for, else the inference's
    filter. The control plane accepts only assets within the filter (:mod:`streams.control`).

    >>> sorted(replay_assets(frozenset(), frozenset("a")))
    ['a']
    >>> sorted(replay_assets(frozenset("ab"), frozenset()))
    ['a', 'b']
    """
    return asked or inference_assets


ReplayOrigin = Literal["command", "late"]


@dataclass(frozen=True, slots=True)
class ReplayState:
    """One replay's progress and outcome (the status topic's record of kind ``replay``)."""

    replay_id: str
    inference_id: str
    start_ms: int
    end_ms: int
    status: ReplayStatus
    done: int
    total: int
    updated_at_ms: int
    reason: str | None = None
    #: the assets replayed (empty: all the inference's)
    assets: tuple[str, ...] = ()
    #: ``command`` (a user's) or ``late`` (an automatic re-score of late data)
    origin: ReplayOrigin = "command"

    @classmethod
    def accepted(cls, replay_id: str, inference_id: str, start_ms: int, end_ms: int,
                 total: int, at_ms: int, assets: Iterable[str] = (),
                 origin: ReplayOrigin = "command") -> ReplayState:
        """A replay just accepted."""
        return cls(replay_id, inference_id, start_ms, end_ms, "Accepted", 0, total, at_ms,
                   assets=tuple(sorted(set(assets))), origin=origin)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def progress(self) -> str:
        return f"{self.done}/{self.total}"

    def _move(self, to: ReplayStatus, at_ms: int, allowed: tuple[str, ...], **kw: Any) -> ReplayState:
        if self.status not in allowed:
            raise ValueError(f"replay {self.replay_id} is {self.status}; it cannot become {to}")
        return replace(self, status=to, updated_at_ms=at_ms, **kw)

    def running(self, at_ms: int) -> ReplayState:
        """Accepted → Running."""
        return self._move("Running", at_ms, ("Accepted",))

    def progressed(self, done: int, at_ms: int) -> ReplayState:
        """Running, with ``done`` points scored (clamped to ``[0, total]``, never backwards).

        >>> r = ReplayState.accepted("r", "i", 0, 10, 10, 0).running(1)
        >>> r.progressed(50, 2).progressed(3, 3).done
        10
        """
        return self._move("Running", at_ms, ("Running",),
                          done=max(self.done, min(max(done, 0), self.total)))

    def succeeded(self, at_ms: int) -> ReplayState:
        """Running → Succeeded, every point done."""
        return self._move("Succeeded", at_ms, ("Running",), done=self.total)

    def failed(self, reason: str, at_ms: int) -> ReplayState:
        """Accepted | Running → Failed, with the reason.

        >>> ReplayState.accepted("r", "i", 0, 10, 10, 0).failed("boom", 1).reason
        'boom'
        """
        return self._move("Failed", at_ms, ("Accepted", "Running"), reason=reason[:2_000])

    def abandoned(self, at_ms: int) -> ReplayState:
        """What a worker starting up makes of an unfinished replay it finds: Failed, with why.

        A finished one is returned as is, so nothing stays Running for ever. An automatic
        (``late``) one is queued again by the controller (:meth:`RescoreQueue.retry
        <streams.late_rescore.RescoreQueue.retry>`): no one would ask for it again.

        >>> ReplayState.accepted("r", "i", 0, 10, 10, 0).running(1).abandoned(9).status
        'Failed'
        """
        if self.finished:
            return self
        if self.origin == "late":
            return self.failed(f"the worker stopped at {self.progress} points; the range is "
                               "queued to re-score again", at_ms)
        return self.failed(f"the worker stopped at {self.progress} points; run the replay again "
                           "(it overwrites idempotently)", at_ms)

    def busy_reason(self) -> str:
        """Why a second replay of the same inference is refused while this one runs."""
        return (f"a replay of {self.inference_id} is already {self.status.lower()}: "
                f"{self.replay_id} ({self.progress} points); one replay at a time")

    def to_record(self) -> dict[str, Any]:
        return {"kind": "replay", "replay_id": self.replay_id, "inference_id": self.inference_id,
                "start": self.start_ms, "end": self.end_ms, "status": self.status,
                "done": self.done, "total": self.total, "updated_at": self.updated_at_ms,
                "reason": self.reason, "assets": list(self.assets), "origin": self.origin}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> ReplayState:
        """Read a replay record back.

        >>> r = ReplayState.accepted("r", "i", 0, 10, 10, 0)
        >>> ReplayState.from_record(r.to_record()) == r
        True
        """
        status = d["status"]
        if status not in ("Accepted", "Running", "Succeeded", "Failed"):
            raise ValueError(f"unknown replay status {status!r}")
        origin = d.get("origin", "command")
        if origin not in ("command", "late"):
            raise ValueError(f"unknown replay origin {origin!r}")
        return cls(str(d["replay_id"]), str(d["inference_id"]), int(d["start"]), int(d["end"]),
                   status, int(d["done"]), int(d["total"]), int(d["updated_at"]), d.get("reason"),
                   tuple(str(a) for a in d.get("assets") or ()), origin)


__all__ = ["MAX_REPLAY_POINTS", "ReplayState", "anomaly_key", "check_range", "keys_to_tombstone",
           "latest_standing", "parse_anomaly_key", "range_scorer", "replay_assets", "replay_id_of",
           "replay_points",
           "score_range"]
