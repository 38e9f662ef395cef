"""A trained model: what an inference needs to score a stream, as one JSON-able artifact.

>>> import numpy as np
>>> rows = np.random.default_rng(1).normal(size=(300, 2))
>>> m = fit_model(rows, ModelParams(model_id="m1", signals=("a", "b"), window_size=8))
>>> m.signals, m.window_size, 0.0 <= m.calibrator.severity(5.0) <= 1.0
(('a', 'b'), 8, True)
>>> Model.from_dict(m.to_dict()) == m
True
>>> m.detector.kind  # auto: two signals → the multivariate detector
'mahalanobis'
>>> m2 = fit_model(rows, ModelParams(model_id="m2", signals=("a", "b"), target_far=0.01))
>>> 1 <= m2.sensitivity <= 100 and m2.heldout_far <= 0.01
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.calibration import Calibrator, sensitivity_for_far
from streams.codec import loads
from streams.decision import FlagPolicy
from streams.detectors import ALGORITHMS, DetectorModel, fit_detector, model_from_dict
from streams.detectors.base import check_lengths
from streams.fill import FILL_METHODS
from streams.window import SlidingWindow


def choose_algorithm(n_signals: int) -> str:
    """The ``auto`` rule: the multivariate detector for two or more signals, zscore for one.

    Chosen on SKAB (docs/skab.md, docs/detectors.md): on the pump's eight signals the
    multivariate detector beats per-signal z-scores; with a single signal the z-score
    detector's jump and flat-line evidence is what there is to use.

    >>> choose_algorithm(1), choose_algorithm(4)
    ('zscore', 'mahalanobis')
    """
    return "mahalanobis" if n_signals >= 2 else "zscore"


@dataclass(frozen=True, slots=True)
class ModelParams:
    """What a user chooses when training a model."""

    model_id: str
    signals: tuple[str, ...]
    window_size: int = 16
    interval_ms: int = 1_000
    fill: str = "previous"
    algorithm: str = "auto"
    version: int = 1
    detector_options: Mapping[str, Any] = field(default_factory=dict)
    target_far: float | None = None
    holdout_fraction: float = 0.2
    #: how severities become flagged runs (streams/decision.py; default: severity ≥ threshold)
    flags: FlagPolicy = field(default_factory=FlagPolicy)


@dataclass(frozen=True, slots=True)
class Model:
    """A fitted detector with its calibration, ready to build per-asset scorers."""

    model_id: str
    version: int
    signals: tuple[str, ...]
    interval_ms: int
    window_size: int
    fill: str
    detector: DetectorModel
    calibrator: Calibrator
    target_far: float | None = None
    sensitivity: int | None = None  # the sensitivity meeting target_far on held-out rows
    heldout_far: float | None = None  # the false-alarm rate it achieved there
    #: how severities become flagged runs (streams/decision.py)
    flags: FlagPolicy = field(default_factory=FlagPolicy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "assetwatch.model/v1",
            "model_id": self.model_id,
            "version": self.version,
            "signals": list(self.signals),
            "interval_ms": self.interval_ms,
            "window_size": self.window_size,
            "fill": self.fill,
            "detector": self.detector.to_dict(),
            "calibration": self.calibrator.to_dict(),
            "target_far": self.target_far,
            "sensitivity": self.sensitivity,
            "heldout_far": self.heldout_far,
            "flags": self.flags.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Model:
        if d.get("format") != "assetwatch.model/v1":
            raise ValueError(f"not an assetwatch model artifact (format {d.get('format')!r})")
        return cls(
            model_id=str(d["model_id"]),
            version=int(d["version"]),
            signals=tuple(d["signals"]),
            interval_ms=int(d["interval_ms"]),
            window_size=int(d["window_size"]),
            fill=str(d["fill"]),
            detector=model_from_dict(d["detector"]),
            calibrator=Calibrator.from_dict(d["calibration"]),
            target_far=None if d.get("target_far") is None else float(d["target_far"]),
            sensitivity=None if d.get("sensitivity") is None else int(d["sensitivity"]),
            heldout_far=None if d.get("heldout_far") is None else float(d["heldout_far"]),
            flags=FlagPolicy.from_dict(d.get("flags")),  # absent (older artifacts): the default
        )


def parse_model(raw: bytes) -> Model:
    """A model from its artifact's bytes; ``ValueError`` names what is wrong with them.

    The artifact is the project's own JSON (``Model.to_dict``), but a file can be cut short,
    edited or be something else entirely: every way it can be wrong is one readable error.

    >>> parse_model(b'{"format": "assetwatch.model/v1", "model_id": "m"}')
    Traceback (most recent call last):
    ...
    ValueError: not a readable model artifact: missing 'version'
    >>> parse_model(b"[1, 2]")
    Traceback (most recent call last):
    ...
    ValueError: not a readable model artifact: a JSON object is expected, got list
    """
    try:
        doc = loads(raw)
    except ValueError as exc:
        raise ValueError(f"not a readable model artifact: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"not a readable model artifact: a JSON object is expected, "
                         f"got {type(doc).__name__}")
    try:
        return Model.from_dict(doc)
    except KeyError as exc:
        raise ValueError(f"not a readable model artifact: missing {exc}") from exc
    except (TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ValueError(f"not a readable model artifact: {exc}") from exc


def training_scores(
    detector: DetectorModel, rows: np.ndarray, history: np.ndarray | None = None,
    lengths: Sequence[int] | None = None,
) -> np.ndarray:
    """Scores of each point of ``rows`` with a full window before it, the model left frozen.

    ``history`` (rows just before ``rows``) seeds the window, so every row can be scored.
    ``lengths`` cuts ``rows`` into pieces that are not contiguous in time (assets, training
    ranges): the window starts empty at each piece after the first.

    >>> import numpy as np
    >>> from streams.detectors.zscore import WindowZScoreModel
    >>> rows = np.random.default_rng(0).normal(size=(50, 1))
    >>> det = WindowZScoreModel.fit(rows, ("v",), window_size=10)
    >>> len(training_scores(det, rows)), len(training_scores(det, rows[10:], rows[:10]))
    (40, 40)
    >>> len(training_scores(det, rows, lengths=(25, 25)))        # 15 + 15: no window spans the cut
    30
    """
    online = detector.build()
    scores = []
    cuts = np.cumsum(check_lengths(rows, lengths))[:-1]
    for n, piece in enumerate(np.split(rows, cuts)):
        window = SlidingWindow(detector.window_size, rows.shape[1])
        if history is not None and n == 0:
            for row in history[-detector.window_size :]:
                window.push(tuple(float(v) for v in row))
        for row in piece:
            x = tuple(float(v) for v in row)
            if window.full:
                scores.append(online.score_one(x, window).score)
            window.push(x)
    return np.asarray(scores)


def split_pieces(
    lengths: Sequence[int], at: int
) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Cut pieces of ``lengths`` rows at row ``at``: the lengths before and after, and whether
    the first piece after continues the last one before (the cut fell inside a piece).

    >>> split_pieces((5, 5), 7), split_pieces((5, 5), 5)
    (((5, 2), (3,), True), ((5,), (5,), False))
    """
    before: list[int] = []
    after: list[int] = []
    done = 0
    continues = False
    for n in lengths:
        if done + n <= at:
            before.append(n)
        elif done >= at:
            after.append(n)
        else:
            before.append(at - done)
            after.append(done + n - at)
            continues = True
        done += n
    return tuple(before), tuple(after), continues


def fit_model(rows: np.ndarray, params: ModelParams, lengths: Sequence[int] | None = None) -> Model:
    """Fit the detector on training rows (points × signals) and calibrate it on their scores.

    ``lengths`` cuts the rows into pieces that are not contiguous in time (one per asset and
    training range, in order): windows never span two pieces. None: one piece.

    With ``params.target_far`` set, the last ``holdout_fraction`` of the rows is held out: the
    detector and calibration are fitted on the rest, and the held-out rows' false-alarm rate
    picks the sensitivity that meets the target (SPEC §4).
    """
    pieces = check_lengths(rows, lengths)
    if params.fill not in FILL_METHODS:
        raise ValueError(f"unknown fill method {params.fill!r}; choose one of {FILL_METHODS}")
    if params.algorithm != "auto" and params.algorithm not in ALGORITHMS:
        raise ValueError(
            f"unknown algorithm {params.algorithm!r}; choose 'auto' or one of {sorted(ALGORITHMS)}"
        )
    algorithm = (
        choose_algorithm(len(params.signals)) if params.algorithm == "auto" else params.algorithm
    )
    fit_rows, held = rows, None
    held_pieces: tuple[int, ...] = ()
    fit_pieces, continues = pieces, False
    if params.target_far is not None:
        if not 0.0 < params.holdout_fraction < 1.0:
            raise ValueError(f"holdout fraction must be in (0, 1), got {params.holdout_fraction}")
        n_held = round(rows.shape[0] * params.holdout_fraction)
        if n_held < 1:
            raise ValueError(f"too few points ({rows.shape[0]}) to hold any out")
        fit_rows, held = rows[:-n_held], rows[-n_held:]
        fit_pieces, held_pieces, continues = split_pieces(pieces, rows.shape[0] - n_held)
    detector = fit_detector(
        algorithm, fit_rows, params.signals, params.window_size, dict(params.detector_options),
        lengths=fit_pieces,
    )
    calibrator = Calibrator.fit(training_scores(detector, fit_rows, lengths=fit_pieces))
    sensitivity = heldout_far = None
    if params.target_far is not None and held is not None:
        held_scores = training_scores(detector, held, history=fit_rows if continues else None,
                                      lengths=held_pieces)
        sensitivity, heldout_far = sensitivity_for_far(calibrator, held_scores, params.target_far)
    return Model(
        model_id=params.model_id,
        version=params.version,
        signals=params.signals,
        interval_ms=params.interval_ms,
        window_size=params.window_size,
        fill=params.fill,
        detector=detector,
        calibrator=calibrator,
        target_far=params.target_far,
        sensitivity=sensitivity,
        heldout_far=heldout_far,
        flags=params.flags,
    )
