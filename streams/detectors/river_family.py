"""The ``river`` detector family: any ``river.anomaly`` estimator, per asset, behind a scaler.

Options (``ModelParams.detector_options``, ``--detector-options`` on the CLI)::

    {"estimator": "HalfSpaceTrees", "params": {"n_trees": 10}, "scaler": "MinMaxScaler",
     "warmup": 1000}

* ``estimator``: a class of ``river.anomaly`` (HalfSpaceTrees, GaussianScorer, LODA,
  OneClassSVM are tested); ``params`` its constructor's JSON arguments. An estimator with a
  ``seed`` gets ``seed=0`` unless one is given (runs are reproducible). HalfSpaceTrees gets
  ``limits`` from the training rows (their range, widened by 10 %; after the scaler when
  there is one) unless given, and a ``window_size`` of at most half the warm-up rows (River's
  250 when there are enough), so its reference window is complete. A univariate,
  *supervised* estimator (GaussianScorer) runs once per signal on that signal's value; the
  point's score is the largest.
* ``scaler``: optional ``river.preprocessing`` scaler (StandardScaler, MinMaxScaler,
  MaxAbsScaler) the points go through first; it learns per asset, as the estimator does.
* ``warmup``: how many of the last training rows every new asset's estimator learns before
  its first point (default 1000), so an asset does not start from an empty model.

Raw scores are River's (higher is more anomalous); a score that can be negative
(OneClassSVM's margin) goes through softplus ``log(1 + eᵗ)``, monotone, so ranks are kept.
The model calibrates them as every family's (:func:`streams.model.fit_model`), so severity
and sensitivity keep their meaning. Each signal's contribution is its share of the squared
standardised deviation from the training mean (River's estimators attribute nothing); for a
per-signal estimator, its share of the signals' scores.

**Snapshots** are plain JSON, never pickle (:mod:`streams.detectors.river_state`): River's
state field by field, or for HalfSpaceTrees — whose state is a function of the last
``window_size + n mod window_size`` points it learnt, its trees being drawn from the seed —
those points, replayed into a fresh estimator on restore (a few KB instead of ~0.5 MB of
trees). An envelope carries a format version and a SHA-256 over the content and the model's
own fingerprint: a corrupted snapshot, or one of another model, is refused with ValueError.

>>> import numpy as np
>>> rows = np.random.default_rng(0).normal(size=(400, 2))
>>> m = RiverModel.fit(rows, ("a", "b"), 8, estimator="HalfSpaceTrees", warmup=300)
>>> det = m.build()
>>> from streams.window import SlidingWindow
>>> w = SlidingWindow(8, 2, [tuple(r) for r in rows[-8:]])
>>> det.score_one((0.0, 0.1), w).score < det.score_one((9.0, -9.0), w).score
True
>>> RiverModel.from_dict(m.to_dict()) == m
True
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from river import anomaly, preprocessing
from river import base as river_base

from streams.detectors.base import DetectorScore, check_training_rows
from streams.detectors.river_state import export_state, import_state
from streams.window import SlidingWindow

SNAPSHOT_VERSION = 1
SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")
#: estimators whose scores are never negative (the others go through softplus)
_NON_NEGATIVE = frozenset({"HalfSpaceTrees", "GaussianScorer", "LODA", "StandardAbsoluteDeviation"})
#: estimators whose state is rebuilt by replaying the last points they learnt
_REPLAYED = frozenset({"HalfSpaceTrees"})
_MIN_STD = 1e-9
_DEFAULT_WARMUP = 1000
_LIMIT_MARGIN = 0.1


def _estimator_class(name: str) -> type:
    cls = getattr(anomaly, name, None) if name in getattr(anomaly, "__all__", ()) else None
    if not isinstance(cls, type) or not issubclass(
        cls, river_base.AnomalyDetector | river_base.SupervisedAnomalyDetector
    ):
        known = sorted(n for n in getattr(anomaly, "__all__", ()) if n[0].isupper())
        raise ValueError(f"unknown river estimator {name!r}; river.anomaly has {', '.join(known)}")
    return cls


def _softplus(t: float) -> float:
    return t + math.log1p(math.exp(-t)) if t > 0 else math.log1p(math.exp(t))


@dataclass(frozen=True, slots=True)
class RiverModel:
    """Which River estimator, with which parameters and scaler, and the rows that warm it."""

    signals: tuple[str, ...]
    window_size: int
    estimator: str
    params: Mapping[str, Any]
    scaler: str | None
    warmup_rows: tuple[tuple[float, ...], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str = "river"
    _fingerprint: list[str] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def fit(
        cls,
        rows: np.ndarray,
        signals: Sequence[str],
        window_size: int,
        estimator: str = "HalfSpaceTrees",
        params: Mapping[str, Any] | None = None,
        scaler: str | None = None,
        warmup: int = _DEFAULT_WARMUP,
        lengths: Sequence[int] | None = None,
    ) -> RiverModel:
        """Choose and check the estimator; keep the last ``warmup`` training rows to warm it."""
        check_training_rows(rows, signals, window_size, lengths)
        est_cls = _estimator_class(estimator)
        if scaler is not None and scaler not in SCALERS:
            raise ValueError(f"unknown river scaler {scaler!r}; choose one of {', '.join(SCALERS)}")
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be a number of rows ≥ 0, got {warmup!r}")
        chosen = dict(params or {})
        accepted = inspect.signature(est_cls).parameters
        unknown = sorted(set(chosen) - set(accepted))
        if unknown:
            raise ValueError(f"{estimator} has no parameter {', '.join(unknown)}; "
                             f"it takes {', '.join(accepted)}")
        if "seed" in accepted and chosen.get("seed") is None:
            chosen["seed"] = 0
        if estimator == "HalfSpaceTrees" and "limits" not in chosen:
            chosen["limits"] = _limits(rows, signals, scaler)
        warm = rows[-warmup:] if warmup else rows[:0]
        if estimator == "HalfSpaceTrees" and "window_size" not in chosen:
            # a reference window must be complete after the warm-up, else HST scores 0
            chosen["window_size"] = max(1, min(250, len(warm) // 2))
        model = cls(
            signals=tuple(signals),
            window_size=window_size,
            estimator=estimator,
            params=orjson.loads(orjson.dumps(chosen)),  # plain JSON, as the artifact stores it
            scaler=scaler,
            warmup_rows=tuple(tuple(float(v) for v in r) for r in warm),
            mean=tuple(float(v) for v in rows.mean(axis=0)),
            std=tuple(float(v) for v in np.maximum(rows.std(axis=0), _MIN_STD)),
        )
        model._self_check(rows[-min(len(rows), 50):])
        return model

    def _self_check(self, rows: np.ndarray) -> None:
        """Refuse at training an estimator whose state the snapshot cannot carry exactly."""
        try:
            det = self.build()
        except TypeError as exc:
            raise ValueError(f"{self.estimator}({self.params}) cannot be built: {exc}") from None
        w = SlidingWindow(self.window_size, len(self.signals))
        for r in rows[: len(rows) // 2]:
            det.learn_one(tuple(float(v) for v in r), w)
        try:
            restored = self.build(orjson.loads(orjson.dumps(det.snapshot())))
        except ValueError as exc:
            raise ValueError(f"river estimator {self.estimator}: its state cannot be "
                             f"snapshot ({exc})") from None
        for r in rows[len(rows) // 2:]:
            x = tuple(float(v) for v in r)
            if det.score_one(x, w) != restored.score_one(x, w):
                raise ValueError(f"river estimator {self.estimator}: a restored snapshot does "
                                 "not score as the original")
            det.learn_one(x, w)
            restored.learn_one(x, w)

    def fingerprint(self) -> str:
        """SHA-256 of the model's artifact form: a snapshot is bound to the model it came from."""
        if not self._fingerprint:
            self._fingerprint.append(
                hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()
            )
        return self._fingerprint[0]

    def new_estimators(self) -> tuple[Any, list[Any]]:
        """A fresh scaler (or None) and estimator(s), from the name and parameters alone."""
        cls = _estimator_class(self.estimator)
        params = dict(self.params)
        if "limits" in params and params["limits"] is not None:
            params["limits"] = {k: tuple(v) for k, v in params["limits"].items()}
        per_signal = issubclass(cls, river_base.SupervisedAnomalyDetector)
        ests = [cls(**params) for _ in (self.signals if per_signal else (None,))]
        scaler = getattr(preprocessing, self.scaler)() if self.scaler else None
        return scaler, ests

    def build(self, state: Mapping[str, Any] | None = None) -> RiverDetector:
        scaler, ests = self.new_estimators()
        det = RiverDetector(self, scaler, ests)
        if state is None:
            w = SlidingWindow(self.window_size, len(self.signals))
            for r in self.warmup_rows:
                det.learn_one(r, w)
            return det
        det.restore(state)
        return det

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "signals": list(self.signals),
            "window_size": self.window_size,
            "estimator": self.estimator,
            "params": dict(self.params),
            "scaler": self.scaler,
            "warmup_rows": [list(r) for r in self.warmup_rows],
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RiverModel:
        _estimator_class(str(d["estimator"]))
        return cls(
            signals=tuple(d["signals"]),
            window_size=int(d["window_size"]),
            estimator=str(d["estimator"]),
            params=dict(d["params"]),
            scaler=None if d.get("scaler") is None else str(d["scaler"]),
            warmup_rows=tuple(tuple(float(v) for v in r) for r in d["warmup_rows"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
        )


def _limits(rows: np.ndarray, signals: Sequence[str], scaler: str | None) -> dict[str, list[float]]:
    """Each signal's training range (after the scaler), widened by 10 % (±0.5 if constant)."""
    values = rows
    if scaler is not None:
        s = getattr(preprocessing, scaler)()
        out = []
        for r in rows:
            x = dict(zip(signals, map(float, r), strict=True))
            s.learn_one(x)
            out.append([s.transform_one(x)[k] for k in signals])
        values = np.asarray(out)
    lo, hi = values.min(axis=0), values.max(axis=0)
    pad = np.where(hi > lo, (hi - lo) * _LIMIT_MARGIN, 0.5)
    return {k: [float(a - p), float(b + p)] for k, a, b, p in zip(signals, lo, hi, pad, strict=True)}


class RiverDetector:
    """Per-asset online part: the scaler and River estimator(s) this asset learns into."""

    __slots__ = ("ests", "learnt", "model", "per_signal", "replay", "scaler")

    def __init__(self, model: RiverModel, scaler: Any, ests: list[Any]) -> None:
        self.model = model
        self.scaler = scaler
        self.ests = ests
        self.per_signal = len(ests) > 1 or isinstance(ests[0], river_base.SupervisedAnomalyDetector)
        self.learnt = 0
        self.replay: deque[tuple[float, ...]] | None = None
        if model.estimator in _REPLAYED:
            self.replay = deque(maxlen=2 * int(ests[0].window_size))

    def _scaled(self, x: Sequence[float]) -> dict[str, float]:
        xd = dict(zip(self.model.signals, map(float, x), strict=True))
        return self.scaler.transform_one(xd) if self.scaler is not None else xd

    def score_one(self, x: Sequence[float], window: SlidingWindow) -> DetectorScore:
        z = self._scaled(x)
        if self.per_signal:
            parts = [_finite(float(e.score_one(None, z[k])))
                     for e, k in zip(self.ests, self.model.signals, strict=True)]
            raw = max(parts)
        else:
            raw = _finite(float(self.ests[0].score_one(z)))
            parts = [((v - m) / s) ** 2 for v, m, s in zip(x, self.model.mean, self.model.std,
                                                            strict=True)]
        score = raw if self.model.estimator in _NON_NEGATIVE else _softplus(raw)
        score = max(score, 0.0)
        total = math.fsum(parts)
        d = len(parts)
        contributions = (tuple(p / total for p in parts) if total > 0 and math.isfinite(total)
                         else (1.0 / d,) * d)
        return DetectorScore(score=score, contributions=contributions)

    def learn_one(self, x: Sequence[float], window: SlidingWindow) -> None:
        if self.scaler is not None:
            self.scaler.learn_one(dict(zip(self.model.signals, map(float, x), strict=True)))
        z = self._scaled(x)
        if self.per_signal:
            for e, k in zip(self.ests, self.model.signals, strict=True):
                e.learn_one(None, z[k])
        else:
            self.ests[0].learn_one(z)
        if self.replay is not None:
            self.replay.append(tuple(z[k] for k in self.model.signals))
        self.learnt += 1

    def snapshot(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "learnt": self.learnt,
            "scaler": export_state(self.scaler) if self.scaler is not None else None,
        }
        if self.replay is not None:
            ws = int(self.ests[0].window_size)
            keep = self.learnt if self.learnt < ws else ws + self.learnt % ws
            body["replay"] = [_plain_row(r) for r in list(self.replay)[len(self.replay) - keep:]]
        else:
            body["estimators"] = [export_state(e) for e in self.ests]
        return {**body, "sha256": _digest(self.model, body)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take a snapshot's state; ValueError ("river snapshot refused: ...") if it is not one
        this model wrote, intact."""
        try:
            self._restore(state)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"river snapshot refused: {exc}") from None

    def _restore(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or state.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"format version {state.get('v')!r}, expected {SNAPSHOT_VERSION}"
                             if isinstance(state, Mapping) else "not a snapshot")
        body = {k: v for k, v in state.items() if k != "sha256"}
        if state.get("sha256") != _digest(self.model, body):
            raise ValueError("content hash mismatch (corrupted, altered, or of another model)")
        learnt = body["learnt"]
        if not isinstance(learnt, int) or isinstance(learnt, bool) or learnt < 0:
            raise ValueError(f"bad point count {learnt!r}")
        if body["scaler"] is not None:
            scaler = import_state(body["scaler"])
            if type(scaler) is not type(self.scaler):
                raise ValueError("the scaler is not the model's")
            self.scaler = scaler
        if self.replay is not None:
            rows = body["replay"]
            ws = int(self.ests[0].window_size)
            d = len(self.model.signals)
            if (not isinstance(rows, list) or len(rows) != min(learnt, ws + learnt % ws)
                    or any(not isinstance(r, list) or len(r) != d for r in rows)):
                raise ValueError("replayed points do not match the point count")
            est = self.ests[0]
            for r in rows:
                z = tuple(_number(v) for v in r)
                est.learn_one(dict(zip(self.model.signals, z, strict=True)))
                self.replay.append(z)
        else:
            ests = [import_state(e) for e in body["estimators"]]
            if len(ests) != len(self.ests) or any(type(a) is not type(b)
                                                  for a, b in zip(ests, self.ests, strict=True)):
                raise ValueError("the estimators are not the model's")
            self.ests = ests
        self.learnt = learnt


def _digest(model: RiverModel, body: Mapping[str, Any]) -> str:
    h = hashlib.sha256(model.fingerprint().encode())
    h.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _plain_row(r: tuple[float, ...]) -> list[Any]:
    return [v if math.isfinite(v) else repr(v) for v in r]


def _number(v: Any) -> float:
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"bad replayed value {v!r}")
    return float(v)


def _finite(s: float) -> float:
    if math.isnan(s):
        return 0.0
    return s if math.isfinite(s) else math.copysign(1e300, s)
