"""Asynchronous detection jobs: what a job asks for, and its states (SPEC §8).

A job is queued as a :class:`JobSpec` and its outcome is a :class:`JobState`, the full state
after each change, kept on a compacted topic by job id:

    Accepted → InProgress (progress %) → Succeeded | PartiallySucceeded | Failed | Canceled

* **Accepted**: queued; a worker has not taken it yet (a cancel asked now cancels it when a
  worker takes it).
* **InProgress**: a worker reads, scores and writes; ``progress_pct`` is the share of the
  input read. A job taken up again after its worker was lost is InProgress again, with the
  next ``attempt``.
* **Succeeded**: every row was read; the results file is written.
* **PartiallySucceeded**: some rows could not be read (counted by reason, first examples
  kept); the results file covers the rest.
* **Failed** (``reason``): the input or the model could not be used, or every row was bad;
  no results file.
* **Canceled**: stopped on request; no results file.

:func:`advance` is the only way between states; it refuses a move out of a final state.

>>> spec = JobSpec("j1", "pumps", "in/line-3.csv", "out")
>>> st = JobState.accepted(spec, at_ms=1_000)
>>> st = advance(st, "InProgress", at_ms=1_100, worker="w1")
>>> st = advance(st, "InProgress", at_ms=1_200, progress_pct=40.0)
>>> done = advance(st, "Succeeded", at_ms=2_000, progress_pct=100.0, result="out/pumps/line-3-results.json")
>>> done.state, done.final, [s for s, _ in done.history]
('Succeeded', True, ['Accepted', 'InProgress', 'Succeeded'])
>>> advance(done, "Canceled", at_ms=2_001)
Rejected(reason='job j1 is already Succeeded')
>>> spec.input_name, spec.results_name
('line-3', 'line-3-results.json')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from streams.calibration import threshold_for

JobStatus = Literal["Accepted", "InProgress", "Succeeded", "PartiallySucceeded", "Failed", "Canceled"]
FINAL: frozenset[str] = frozenset({"Succeeded", "PartiallySucceeded", "Failed", "Canceled"})
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "Accepted": frozenset({"InProgress", "Failed", "Canceled"}),
    "InProgress": frozenset({"InProgress", *FINAL}),
    **{s: frozenset() for s in FINAL},
}
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_INPUT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A move that is not allowed, and why."""

    reason: str


def input_name_of(location: str) -> str:
    """The name a results file takes after its input: the last path part without extension.

    >>> input_name_of("s3://bucket/2026/line 3.csv"), input_name_of("/data/x.tar.json")
    ('line_3', 'x.tar')
    """
    last = location.rstrip("/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last.lstrip(".") else last
    return _INPUT_NAME.sub("_", stem).strip("._") or "input"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job asks for: a model, an input, where its results go, how sensitively."""

    job_id: str
    model_id: str
    input: str
    output: str
    name: str | None = None  # the input name in the results file's name (default: from input)
    model_version: int | None = None
    sensitivity: int | None = None
    max_fill_points: int | None = None
    timestamp_column: str | None = None
    submitted_at_ms: int = 0
    submitted_by: str = "cli"

    def __post_init__(self) -> None:
        if not _JOB_ID.match(self.job_id):
            raise ValueError(f"job id {self.job_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
        if not _JOB_ID.match(self.model_id):
            raise ValueError(f"model {self.model_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
        if not self.input:
            raise ValueError("a job needs an input")
        if not self.output:
            raise ValueError("a job needs an output")
        if self.name is not None and not _JOB_ID.match(self.name):
            raise ValueError(f"name {self.name!r} must be 1-128 letters, digits, '.', '_' or '-'")
        if self.sensitivity is not None:
            threshold_for(self.sensitivity)
        if self.max_fill_points is not None and self.max_fill_points < 0:
            raise ValueError(f"max fill points must be ≥ 0, got {self.max_fill_points}")
        if self.model_version is not None and self.model_version < 1:
            raise ValueError(f"model version must be ≥ 1, got {self.model_version}")

    @property
    def input_name(self) -> str:
        return self.name or input_name_of(self.input)

    @property
    def results_name(self) -> str:
        return f"{self.input_name}-results.json"

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "model_id": self.model_id, "input": self.input,
                "output": self.output, "name": self.name, "model_version": self.model_version,
                "sensitivity": self.sensitivity, "max_fill_points": self.max_fill_points,
                "timestamp_column": self.timestamp_column,
                "submitted_at_ms": self.submitted_at_ms, "submitted_by": self.submitted_by}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobSpec:
        """Rebuild from :meth:`to_dict`'s form; a ``ValueError`` says what is wrong.

        >>> spec = JobSpec("j", "m", "a.csv", "out")
        >>> JobSpec.from_dict(spec.to_dict()) == spec
        True
        """
        try:
            def opt_int(k: str) -> int | None:
                return None if d.get(k) is None else int(d[k])
            return cls(job_id=str(d["job_id"]), model_id=str(d["model_id"]), input=str(d["input"]),
                       output=str(d["output"]), name=d.get("name"),
                       model_version=opt_int("model_version"), sensitivity=opt_int("sensitivity"),
                       max_fill_points=opt_int("max_fill_points"),
                       timestamp_column=d.get("timestamp_column"),
                       submitted_at_ms=int(d.get("submitted_at_ms", 0)),
                       submitted_by=str(d.get("submitted_by", "cli")))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a job spec: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class JobState:
    """A job's full state after a change (the job-status topic's value)."""

    spec: JobSpec
    state: str
    history: tuple[tuple[str, int], ...]
    progress_pct: float = 0.0
    attempt: int = 0
    worker: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, Any] | None = None
    reason: str | None = None
    result: str | None = None
    updated_at_ms: int = 0

    @classmethod
    def accepted(cls, spec: JobSpec, at_ms: int) -> JobState:
        return cls(spec, "Accepted", (("Accepted", at_ms),), updated_at_ms=at_ms)

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def to_record(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "state": self.state, "progress_pct": self.progress_pct,
                "attempt": self.attempt, "worker": self.worker, "reason": self.reason,
                "result": self.result, "counts": dict(self.counts),
                "rejected": None if self.rejected is None else dict(self.rejected),
                "history": [[s, at] for s, at in self.history], "updated_at_ms": self.updated_at_ms,
                "spec": self.spec.to_dict()}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> JobState:
        """The state :meth:`to_record` wrote (a ``ValueError`` if it is not one).

        >>> st = JobState.accepted(JobSpec("j", "m", "a.csv", "out"), 5)
        >>> JobState.from_record(st.to_record()) == st
        True
        """
        try:
            state = str(d["state"])
            if state not in TRANSITIONS:
                raise ValueError(f"unknown job state {state!r}")
            return cls(spec=JobSpec.from_dict(d["spec"]), state=state,
                       history=tuple((str(s), int(at)) for s, at in d["history"]),
                       progress_pct=float(d.get("progress_pct", 0.0)), attempt=int(d.get("attempt", 0)),
                       worker=d.get("worker"),
                       counts={str(k): int(v) for k, v in (d.get("counts") or {}).items()},
                       rejected=d.get("rejected"), reason=d.get("reason"), result=d.get("result"),
                       updated_at_ms=int(d.get("updated_at_ms", 0)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a job state: {exc!r}") from None


def advance(st: JobState, to: str, at_ms: int, **changes: Any) -> JobState | Rejected:
    """The state after moving to ``to`` at ``at_ms`` (with ``changes``), or why it cannot."""
    if st.final:
        return Rejected(f"job {st.job_id} is already {st.state}")
    if to not in TRANSITIONS[st.state]:
        return Rejected(f"job {st.job_id} cannot go from {st.state} to {to}")
    history = st.history if to == st.state else (*st.history, (to, at_ms))
    return replace(st, state=to, history=history, updated_at_ms=at_ms, **changes)


def outcome(rows: int, rejected: int, first_reason: str | None) -> tuple[str, str | None]:
    """The final state of a job that read ``rows`` rows, ``rejected`` of them bad.

    >>> outcome(10, 0, None), outcome(10, 2, "x")
    (('Succeeded', None), ('PartiallySucceeded', None))
    >>> outcome(3, 3, "row 1: timestamp 'x' …")
    ('Failed', "every row was rejected (3); first: row 1: timestamp 'x' …")
    >>> outcome(0, 0, None)
    ('Failed', 'the input has no data rows')
    """
    if rows == 0:
        return "Failed", "the input has no data rows"
    if rejected >= rows:
        return "Failed", f"every row was rejected ({rejected}); first: {first_reason}"
    return ("PartiallySucceeded" if rejected else "Succeeded"), None
