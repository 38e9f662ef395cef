"""Resolving a hook's secret references on the worker, at delivery time (docs/hooks.md).

``env:NAME`` is the worker's environment variable ``NAME``; ``file:/path`` is the content of
that file on the worker (surrounding whitespace stripped, so a trailing newline is harmless;
a Docker or Kubernetes secret mounted as a file is the usual source). Read at each attempt,
so a rotated secret is used from the next attempt on. A reference that cannot be resolved is
a ``ValueError`` whose reason names the reference, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from streams.hooks import HookConfig, SecretRef, resolve_secrets

#: a secret file larger than this is refused (a secret is a line, not a document)
MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret(ref: SecretRef, env: Mapping[str, str] | None = None) -> str:
    """The value ``ref`` points to; ``ValueError`` with the reason when it cannot be read."""
    if ref.is_value:
        return ref.target
    if ref.source == "env":
        value = (os.environ if env is None else env).get(ref.target)
        if not value:
            raise ValueError(f"secret {ref}: the variable is not set on this worker")
        return value
    path = Path(ref.target)
    try:
        if path.stat().st_size > MAX_SECRET_FILE_BYTES:
            raise ValueError(f"secret {ref}: the file is larger than {MAX_SECRET_FILE_BYTES} bytes")
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ValueError(f"secret {ref}: cannot read the file on this worker ({reason})") from None
    if not value:
        raise ValueError(f"secret {ref}: the file is empty")
    return value


def resolved(hook: HookConfig, env: Mapping[str, str] | None = None) -> HookConfig:
    """``hook`` with its secrets read here, now; ``ValueError`` (no value in it) if one cannot be."""
    return resolve_secrets(hook, lambda ref: read_secret(ref, env))
