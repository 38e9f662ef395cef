"""Model store: versioned model artifacts in a directory, each checked by its content hash.

Layout: ``<root>/<model_id>/v<version>.json`` (the artifact, canonical JSON) and beside it
``v<version>.sha256``. :meth:`ModelStore.load` recomputes the hash and refuses an artifact that
does not match: a tampered or truncated file is an error, never loaded blindly. Artifacts
are JSON, never pickles.

Beside them, ``v<version>.record.json`` holds the version's :class:`ModelRecord` (status,
spec, quality report, content hash, calibration summary…), the same record the registry
topic carries. A version may have a record and no artifact (it is Created, Running or
Failed); :meth:`ModelStore.load` refuses a version whose record is not Completed, and one
whose artifact's hash differs from the one its record holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from streams.lifecycle import Lifecycle, ModelStatus, Rejected, advance
from streams.model import Model, parse_model
from streams.quality import QualityReport


class ModelStoreError(RuntimeError):
    """A model could not be stored or loaded; the message says why."""


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """Metadata of one model version: the registry's value, stored beside the artifact."""

    model_id: str
    version: int
    lifecycle: Lifecycle
    spec: Mapping[str, Any] = field(default_factory=dict)  # streams.training.TrainingSpec.to_dict()
    source: str | None = None  # the training file's name
    quality: QualityReport | None = None
    content_hash: str | None = None
    signals: tuple[str, ...] = ()
    interval_ms: int | None = None
    window_size: int | None = None
    algorithm: str | None = None  # the detector fitted (auto resolved)
    calibration: Mapping[str, Any] | None = None
    target_far: float | None = None
    sensitivity: int | None = None  # the sensitivity meeting target_far on held-out rows
    achieved_far: float | None = None  # the rate it achieved there
    training_far: tuple[float, ...] = ()  # share of training points flagged at sensitivity 1..100

    @property
    def key(self) -> str:
        """The registry key: ``model_id/version``."""
        return f"{self.model_id}/{self.version}"

    @property
    def status(self) -> ModelStatus:
        return self.lifecycle.status

    @property
    def reason(self) -> str | None:
        return self.lifecycle.reason

    def expected_far(self, sensitivity: int) -> float | None:
        """The share of training points flagged at ``sensitivity``, when it was measured."""
        if len(self.training_far) != 100 or not 1 <= sensitivity <= 100:
            return None
        return self.training_far[sensitivity - 1]

    def moved(self, to: ModelStatus, at_ms: int, reason: str | None = None, **changes: Any) -> ModelRecord:
        """This record after a lifecycle move (and other changes); an invalid move raises."""
        nxt = advance(self.lifecycle, to, at_ms, reason)
        if isinstance(nxt, Rejected):
            raise ModelStoreError(f"model {self.key}: {nxt.reason}")
        return replace(self, lifecycle=nxt, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "assetwatch.model-record/v1",
            "model_id": self.model_id,
            "version": self.version,
            "status": self.lifecycle.status.value,
            "reason": self.lifecycle.reason,
            "created_at_ms": self.lifecycle.created_at_ms,
            "completed_at_ms": self.lifecycle.completed_at_ms,
            "lifecycle": self.lifecycle.to_dict(),
            "spec": dict(self.spec),
            "source": self.source,
            "quality": None if self.quality is None else self.quality.to_dict(),
            "content_hash": self.content_hash,
            "signals": list(self.signals),
            "interval_ms": self.interval_ms,
            "window_size": self.window_size,
            "algorithm": self.algorithm,
            "calibration": None if self.calibration is None else dict(self.calibration),
            "target_far": self.target_far,
            "sensitivity": self.sensitivity,
            "achieved_far": self.achieved_far,
            "training_far": list(self.training_far),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelRecord:
        if d.get("format") != "assetwatch.model-record/v1":
            raise ValueError(f"not an assetwatch model record (format {d.get('format')!r})")

        def opt(key: str, kind: type[Any]) -> Any:
            return None if d.get(key) is None else kind(d[key])

        return cls(
            model_id=str(d["model_id"]),
            version=int(d["version"]),
            lifecycle=Lifecycle.from_dict(d["lifecycle"]),
            spec=dict(d.get("spec") or {}),
            source=opt("source", str),
            quality=None if d.get("quality") is None else QualityReport.from_dict(d["quality"]),
            content_hash=opt("content_hash", str),
            signals=tuple(d.get("signals") or ()),
            interval_ms=opt("interval_ms", int),
            window_size=opt("window_size", int),
            algorithm=opt("algorithm", str),
            calibration=None if d.get("calibration") is None else dict(d["calibration"]),
            target_far=opt("target_far", float),
            sensitivity=opt("sensitivity", int),
            achieved_far=opt("achieved_far", float),
            training_far=tuple(float(v) for v in d.get("training_far") or ()),
        )


def encode_record(record: ModelRecord) -> bytes:
    """A record's byte form (registry value and file body): JSON, keys sorted."""
    return orjson.dumps(record.to_dict(), option=orjson.OPT_SORT_KEYS)


def decode_record(body: bytes) -> ModelRecord:
    """The record of :func:`encode_record`'s bytes; ``ValueError`` when they are not one."""
    try:
        return ModelRecord.from_dict(orjson.loads(body))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable model record: {exc}") from exc


def _atomic_write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _canonical(model: Model) -> bytes:
    return orjson.dumps(model.to_dict(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


class ModelStore:
    """A directory of model artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, model_id: str, version: int) -> Path:
        return self.root / model_id / f"v{version}.json"

    def save(self, model: Model) -> str:
        """Write the artifact atomically; return its sha256."""
        body = _canonical(model)
        digest = hashlib.sha256(body).hexdigest()
        path = self.path(model.model_id, model.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
        path.with_suffix(".sha256").write_text(digest + "\n")
        return digest

    def record_path(self, model_id: str, version: int) -> Path:
        return self.root / model_id / f"v{version}.record.json"

    def save_record(self, record: ModelRecord) -> None:
        """Write (or overwrite) a version's record, atomically."""
        _atomic_write(self.record_path(record.model_id, record.version), encode_record(record))

    def load_record(self, model_id: str, version: int) -> ModelRecord | None:
        """A version's record, ``None`` when it has none (e.g. saved without one)."""
        path = self.record_path(model_id, version)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode_record(body)
        except ValueError as exc:
            raise ModelStoreError(f"model {model_id!r} v{version}: {exc}") from exc

    def record_versions(self, model_id: str) -> list[int]:
        folder = self.root / model_id
        if not folder.is_dir():
            return []
        stems = (p.name.removesuffix(".record.json") for p in folder.glob("v*.record.json"))
        return sorted(int(s[1:]) for s in stems if s[1:].isdigit())

    def next_version(self, model_id: str) -> int:
        """The version a new training of ``model_id`` takes: one past every artifact and record."""
        return max([0, *self.versions(model_id), *self.record_versions(model_id)]) + 1

    def model_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def records(self) -> list[ModelRecord]:
        """Every version's record, by model id then version."""
        out = []
        for model_id in self.model_ids():
            for version in self.record_versions(model_id):
                record = self.load_record(model_id, version)
                if record is not None:
                    out.append(record)
        return out

    def versions(self, model_id: str) -> list[int]:
        folder = self.root / model_id
        if not folder.is_dir():
            return []
        return sorted(int(p.stem[1:]) for p in folder.glob("v*.json") if p.stem[1:].isdigit())

    def load(self, model_id: str, version: int | None = None) -> Model:
        """Load a model (latest version by default), refusing one whose hash does not match."""
        if version is None:
            known = self.versions(model_id)
            if not known:
                raise ModelStoreError(f"no model {model_id!r} in {self.root}")
            version = known[-1]
        path = self.path(model_id, version)
        try:
            body = path.read_bytes()
            expected = path.with_suffix(".sha256").read_text().strip()
        except FileNotFoundError as exc:
            raise ModelStoreError(f"model {model_id!r} v{version}: missing {exc.filename}") from exc
        actual = hashlib.sha256(body).hexdigest()
        if actual != expected:
            raise ModelStoreError(
                f"model {model_id!r} v{version}: content hash mismatch "
                f"(recorded {expected[:12]}…, file {actual[:12]}…); refusing to load it"
            )
        record = self.load_record(model_id, version)
        if record is not None:
            if record.status is not ModelStatus.COMPLETED:
                why = f": {record.reason}" if record.reason else ""
                raise ModelStoreError(
                    f"model {model_id!r} v{version} is {record.status.value}{why}; "
                    "only a completed model can be loaded"
                )
            if record.content_hash is not None and record.content_hash != actual:
                raise ModelStoreError(
                    f"model {model_id!r} v{version}: content hash mismatch with its record "
                    f"(record {record.content_hash[:12]}…, file {actual[:12]}…); refusing to load it"
                )
        try:
            return parse_model(body)
        except ValueError as exc:  # every way the bytes can be wrong, named (fuzz/targets.py)
            raise ModelStoreError(f"model {model_id!r} v{version}: {exc}") from exc
