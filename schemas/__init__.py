"""Versioned JSON Schemas (draft 2020-12) of every record on every assetwatch topic.

One file per record and version, ``<record>.v<N>.json``; a schema is the public contract for
producers and consumers, and the edge decoder validates with it. A breaking change is a new
file (``telemetry.v2.json``), never an edit of a published one.

>>> names()[:3]
['alert.v1', 'anomaly.v1', 'control-command.v1']
>>> load("telemetry.v1")["title"]
'Telemetry (v1)'
>>> validator("telemetry.v1")({"asset_id": "pump-1", "ts": 1767225600000, "signals": {"t": 1.5}})
{'asset_id': 'pump-1', 'ts': 1767225600000, 'signals': {'t': 1.5}}
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson

__all__ = ["ValidationError", "load", "names", "validator"]

#: What a compiled validator raises: ``.message`` reads like ``data.signals.temp must be number``.
ValidationError = fastjsonschema.JsonSchemaValueException

_SUFFIX = ".json"


@functools.cache
def _names() -> tuple[str, ...]:
    files = importlib.resources.files(__name__).iterdir()
    return tuple(sorted(f.name[: -len(_SUFFIX)] for f in files if f.name.endswith(_SUFFIX)))


def names() -> list[str]:
    """The names of all schemas, sorted, e.g. ``"telemetry.v1"``.

    >>> "anomaly.v1" in names()
    True
    """
    return list(_names())


@functools.cache
def _raw(name: str) -> bytes:
    if name not in _names():
        raise KeyError(f"no schema {name!r}; known: {', '.join(_names())}")
    return importlib.resources.files(__name__).joinpath(name + _SUFFIX).read_bytes()


def load(name: str) -> dict[str, Any]:
    """The schema ``name`` as a fresh dict (the caller may modify it).

    >>> load("anomaly.v1")["$id"]
    'https://assetwatch.example/schemas/anomaly.v1.json'
    """
    schema: dict[str, Any] = orjson.loads(_raw(name))
    return schema


def _no_remote_refs(uri: str) -> Any:
    raise ValueError(f"remote $ref not allowed in assetwatch schemas: {uri}")


_HANDLERS: dict[str, Callable[[str], Any]] = {
    "http": _no_remote_refs,
    "https": _no_remote_refs,
    "file": _no_remote_refs,
}


@functools.cache
def validator(
    name: str, definition: str | None = None, *, use_formats: bool = True
) -> Callable[[Any], Any]:
    """A compiled ``fastjsonschema`` validate function for schema ``name`` (cached).

    It returns the data when valid and raises :data:`ValidationError` otherwise. With
    ``definition``, it validates against ``$defs/<definition>`` of that schema instead of the
    whole (the edge decoder picks the telemetry form itself, for sharper messages).
    ``use_formats=False`` skips ``format`` checks, for callers that parse those fields anyway.

    >>> check = validator("telemetry.v1", "single")
    >>> try:
    ...     check({"asset_id": "p", "ts": 0, "signals": {"temp": "hot"}})
    ... except ValidationError as e:
    ...     print(e.message)
    data.signals.temp must be number or null
    """
    schema = load(name)
    if definition is not None:
        defs = schema.get("$defs", {})
        if definition not in defs:
            raise KeyError(f"schema {name!r} has no $defs/{definition}; known: {', '.join(defs)}")
        schema = {
            "$schema": schema["$schema"],
            "$id": schema["$id"],
            "$defs": defs,
            "$ref": f"#/$defs/{definition}",
        }
    validate: Callable[[Any], Any] = fastjsonschema.compile(
        schema, handlers=_HANDLERS, use_formats=use_formats
    )
    return validate
