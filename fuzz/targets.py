"""The edges of assetwatch, each as a function of raw bytes, and what each may answer.

An edge takes bytes someone else wrote (a producer, an operator, a file, an HTTP client)
and must end in a result or a refusal with a reason: a :class:`~streams.records.Rejection`
(telemetry, which goes to the dead-letter topic), a ``ValueError`` whose message says what
is wrong (commands, hooks, model files, job requests), or an HTTP error status with a
message (the synchronous detect API). Anything else — another exception, a refusal without
a reason, a result that breaks the edge's own invariants — is a finding.

>>> TARGETS["telemetry"].run(b'{"asset_id": "p1", "ts": 1767225600000, "signals": {"v": 1.5}}')
>>> TARGETS["control-command"].run(b'{"type": "stop"}')   # refused with a reason: fine
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from agents.detect import detect
from agents.jobs_api import spec_from_request
from agents.model_store import ModelStore
from streams.control import Command, ModelInfo, StaticCatalog, decide
from streams.decode import DecodeLimits, check_arrival, decode_telemetry
from streams.hooks import decode_hook
from streams.model import ModelParams, fit_model, parse_model
from streams.records import Rejection

NOW_MS = 1_767_225_600_000


class FindingError(AssertionError):
    """An edge answered in a way it must not: the fuzzer's crash."""


@dataclass(frozen=True)
class Target:
    """One edge: ``run`` raises :class:`FindingError` (or an unexpected exception) on a bug."""

    name: str
    run: Callable[[bytes], None]
    #: inputs to start from (valid and near-valid examples; the committed corpus adds more)
    seeds: tuple[bytes, ...] = field(default=())


def _refused_with_reason(exc: ValueError) -> None:
    if not str(exc).strip():
        raise FindingError(f"refused without a reason: {exc!r}") from exc


# ---------------------------------------------------------------------------- telemetry

_LIMITS = DecodeLimits()


def telemetry(data: bytes) -> None:
    """A telemetry record (the first byte picks the key) → readings or a rejection."""
    key = None if not data or data[0] % 3 == 0 else data[:1 + data[0] % 7]
    out = decode_telemetry(data, key, _LIMITS)
    if isinstance(out, Rejection):
        if not out.reason:
            raise FindingError("a rejection without a reason")
        return
    for r in out:
        if not r.asset_id or not all(math.isfinite(v) for v in r.signals.values()):
            raise FindingError(f"an accepted reading breaks the schema: {r!r}")
    late = check_arrival(out, data, NOW_MS, _LIMITS)
    if late is not None and not late.reason:
        raise FindingError("an arrival rejection without a reason")


# ---------------------------------------------------------------------------- control commands

_CATALOG = StaticCatalog(
    models={("m", 1): ModelInfo("m", 1, "Completed", ("a", "b"))},
    topics={"telemetry": frozenset({"a", "b"})},
    hooks=frozenset({"ops"}),
)


def control_command(data: bytes) -> None:
    """A control-topic record (or a REST body) → a decision, or a ``ValueError`` with reason."""
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("a command must be a JSON object")
        cmd = Command.from_record(doc)
    except ValueError as exc:
        _refused_with_reason(exc)
        return
    for internal in (False, True):
        decision = decide(None, cmd, _CATALOG, NOW_MS, internal=internal)
        if not decision.accepted and not decision.reason:
            raise FindingError("a command rejected without a reason")


# ---------------------------------------------------------------------------- hooks

def hook_config(data: bytes) -> None:
    """A hooks-topic record → a hook config, or a ``ValueError`` with reason."""
    try:
        decode_hook(data)
    except ValueError as exc:
        _refused_with_reason(exc)


# ---------------------------------------------------------------------------- model files

def model_file(data: bytes) -> None:
    """A model artifact's bytes → a model, or a ``ValueError`` with reason."""
    try:
        parse_model(data)
    except ValueError as exc:
        _refused_with_reason(exc)


# ---------------------------------------------------------------------------- REST bodies

#: one small model for the detect API, in one fixed place shared by every fuzzing process
#: (made once; a per-process temporary directory would outlive libFuzzer's exit)
_STORE_DIR = Path(tempfile.gettempdir()) / "assetwatch-fuzz-models"
_store: ModelStore | None = None


def _model_store() -> ModelStore:
    global _store
    if _store is None:
        _store = ModelStore(_STORE_DIR)
        if not _store.versions("m"):
            rows = np.random.default_rng(0).normal(size=(200, 2))
            _store.save(fit_model(rows, ModelParams(model_id="m", signals=("a", "b"), window_size=4)))
    return _store


def detect_body(data: bytes) -> None:
    """A ``POST /v1/detect`` body → 200 with results, or an error status with a message."""
    status, answer = detect(_model_store(), data)
    if status != 200 and not (400 <= status < 500 and str(answer.get("error", "")).strip()):
        raise FindingError(f"detect answered {status} {answer!r}")


def job_request(data: bytes) -> None:
    """A ``POST /v1/jobs`` body → a job spec, or a ``ValueError`` with reason."""
    try:
        spec_from_request(orjson.loads(data), "job-1", NOW_MS, "fuzz")
    except ValueError as exc:
        _refused_with_reason(exc)


def _model_seed() -> bytes:
    rows = np.random.default_rng(1).normal(size=(60, 1))
    return orjson.dumps(fit_model(rows, ModelParams(model_id="s", signals=("v",), window_size=3)).to_dict())


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("telemetry", telemetry, (
        b'{"asset_id": "p1", "ts": 1767225600000, "signals": {"v": 1.5}}',
        b'{"asset_id": "p1", "ts": "2026-01-01T00:00:00Z", "signals": {"v": 1, "w": -2e3}}',
        b'{"readings": [{"asset_id": "a", "ts": 1, "signals": {"v": 0}}, '
        b'{"asset_id": "b", "ts": 2, "signals": {"v": 1}}]}',
        b'{"asset_id": "p1", "ts": 1767225600000, "signals": {"v": NaN}}',
    )),
    Target("control-command", control_command, (
        b'{"command_id": "c1", "type": "create", "inference_id": "i", "issued_at": 5, '
        b'"issued_by": "cli", "params": {"model_id": "m", "topic": "telemetry"}}',
        b'{"command_id": "c2", "type": "pause", "inference_id": "i", "params": {}}',
        b'{"command_id": "c3", "type": "fail", "inference_id": "i", "params": {"error": "x"}}',
    )),
    Target("hook-config", hook_config, (
        b'{"format": "assetwatch.hook/v2", "name": "ops", "kind": "webhook", '
        b'"url": "http://127.0.0.1:9/x", "timeout_s": 5}',
        b'{"format": "assetwatch.hook/v1", "name": "mail", "kind": "email", "host": "127.0.0.1", '
        b'"port": 25, "sender": "a@b.c", "recipients": ["d@e.f"]}',
    )),
    Target("model-file", model_file, (_model_seed(),)),
    Target("detect-body", detect_body, (
        b'{"model": "m", "readings": [{"asset_id": "a", "ts": 1767225600000, '
        b'"signals": {"a": 0.1, "b": 0.2}}]}',
    )),
    Target("job-request", job_request, (
        b'{"model": "m", "input": "a.csv", "output": "out", "sensitivity": 70}',
    )),
)}
