"""Model store: versioned model artifacts in a directory, each checked by its content hash.

Layout: ``<root>/<model_id>/v<version>.json`` (the artifact, canonical JSON) and beside it
``v<version>.sha256``. :meth:`ModelStore.load` recomputes the hash and refuses an artifact that
does not match: a tampered or truncated file is an error, never loaded blindly. Artifacts
are JSON, never pickles.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from streams.model import Model


class ModelStoreError(RuntimeError):
    """A model could not be stored or loaded; the message says why."""


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
        try:
            return Model.from_dict(orjson.loads(body))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            raise ModelStoreError(f"model {model_id!r} v{version}: unreadable artifact: {exc}") from exc
