"""River estimator state as plain JSON, field by field, and back — never pickle.

A per-asset snapshot travels through a changelog topic that anyone allowed to write to it
could forge. So River objects are not pickled: :func:`export_state` walks an object's fields
and writes plain data (numbers, strings, lists, tagged dicts), and :func:`import_state`
builds the objects again, refusing any class outside an allowlist of River's own
state-holding modules. No code named by the data runs: classes are looked up among modules
already imported (never imported on demand), created with ``cls.__new__`` (no ``__init__``,
no ``__setstate__``, no ``__reduce__``) and their fields set one by one. The worst a forged
snapshot can do is set wrong numbers in a River estimator of the model's own kind, as a
forged ``mahalanobis`` snapshot can set a wrong mean; the family's envelope
(:mod:`streams.detectors.river_family`) adds a version and a SHA-256 over the content bound
to the model, so corruption and a snapshot of another model are refused.

Tags (a JSON object with one of these keys is a tagged value):

* ``{"$f": "inf" | "-inf" | "nan"}``: a non-finite float (JSON has none);
* ``{"$t": [...]}``: a tuple; ``{"$d": [[k, v], ...], "$k": kind}``: a dict (``dict``,
  ``defaultdict`` with its ``$default`` factory, ``Counter``, ``deque`` with ``$maxlen``);
* ``{"$o": "module:Qualname", "$v": {field: value}}``: an object of an allowed class;
* ``{"$c": "module:Qualname"}``: a class itself (a factory); ``{"$p": class, "$a": [args]}``:
  ``functools.partial`` of an allowed class with plain arguments;
* ``{"$r": state}``: a ``random.Random``; ``{"$vd": dict}``: River's ``VectorDict`` of
  weights.

>>> from river import stats
>>> m = stats.Var()
>>> for v in (1.0, 2.0, 4.0):
...     m.update(v)
>>> import_state(export_state(m)).get() == m.get()
True
>>> import_state({"$o": "os:system", "$v": {}})
Traceback (most recent call last):
...
ValueError: refused: class os:system is not an allowed River state class
"""

from __future__ import annotations

import collections
import functools
import math
import random
import sys
from typing import Any

#: modules whose classes may appear in a River state (prefixes of the module name)
_ALLOWED_MODULES = (
    "river.anomaly.", "river.stats.", "river.proba.", "river.utils.", "river.optim.",
    "river.sketch.", "river.preprocessing.", "river.linear_model.", "river.tree.",
)
_BUILTIN_FACTORIES: dict[str, type] = {"float": float, "int": int, "list": list, "dict": dict}
_MAX_DEPTH = 64


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed_class(name: Any) -> type:
    """The allowed class called ``name`` (``module:Qualname``), from modules already loaded."""
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"refused: {name!r} is not a class name")
    module_name, qualname = name.split(":", 1)
    if not module_name.startswith(_ALLOWED_MODULES) or "." in qualname or qualname.startswith("_"):
        raise ValueError(f"refused: class {name} is not an allowed River state class")
    module = sys.modules.get(module_name)
    cls = getattr(module, qualname, None) if module is not None else None
    if not isinstance(cls, type) or cls.__module__ != module_name:
        raise ValueError(f"refused: class {name} is not an allowed River state class")
    return cls


def _fields(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                out[slot] = getattr(obj, slot)
    return out


def export_state(value: Any) -> Any:
    """Plain JSON-able data for ``value`` (River objects field by field); ValueError when it
    holds something the codec does not carry (a lambda, an open file, a Rust-backed stat)."""
    return _export(value, 0)


def _export(v: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("state nested too deeply to export")
    d = depth + 1
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$f": repr(v)}
    if isinstance(v, list):
        return [_export(x, d) for x in v]
    if isinstance(v, tuple):
        return {"$t": [_export(x, d) for x in v]}
    if isinstance(v, collections.deque):
        return {"$d": [_export(x, d) for x in v], "$k": "deque", "$maxlen": v.maxlen}
    if isinstance(v, dict):
        out: dict[str, Any] = {"$d": [[_export(k, d), _export(x, d)] for k, x in v.items()]}
        if isinstance(v, collections.defaultdict):
            out |= {"$k": "defaultdict", "$default": _export_factory(v.default_factory, d)}
        elif isinstance(v, collections.Counter):
            out["$k"] = "Counter"
        elif type(v) is not dict:
            raise ValueError(f"cannot export a {type(v).__name__}")
        return out
    if isinstance(v, random.Random):
        return {"$r": _export(v.getstate(), d)}
    if isinstance(v, type):
        return _export_factory(v, d)
    if isinstance(v, functools.partial):
        return _export_factory(v, d)
    cls = type(v)
    if cls.__name__ == "VectorDict" and cls.__module__.startswith("river."):
        # River's (Rust) weight vector: its values; a default factory is not readable, and
        # the linear models this family runs create theirs without one
        return {"$vd": _export(v.to_dict(), d)}
    name = _class_name(cls)
    if _allowed_class(name) is not cls:
        raise ValueError(f"cannot export a {name}")
    return {"$o": name, "$v": {k: _export(x, d) for k, x in _fields(v).items()}}


def _export_factory(f: Any, depth: int) -> Any:
    if f is None:
        return None
    if isinstance(f, type) and f.__name__ in _BUILTIN_FACTORIES and _BUILTIN_FACTORIES[f.__name__] is f:
        return {"$c": f"builtins:{f.__name__}"}
    if isinstance(f, type):
        _allowed_class(_class_name(f))
        return {"$c": _class_name(f)}
    if isinstance(f, functools.partial):
        if not isinstance(f.func, type) or f.keywords:
            raise ValueError(f"cannot export the factory {f!r}")
        return {"$p": _export_factory(f.func, depth), "$a": [_export(a, depth) for a in f.args]}
    return _export(f, depth)  # an initializer object, e.g. optim.initializers.Zeros()


def import_state(data: Any) -> Any:
    """Rebuild what :func:`export_state` wrote; ValueError ("refused: ...") on anything else."""
    return _import(data, 0)


def _import(v: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("refused: state nested too deeply")
    d = depth + 1
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list):
        return [_import(x, d) for x in v]
    if not isinstance(v, dict):
        raise ValueError(f"refused: unexpected {type(v).__name__} in a state")
    if "$f" in v:
        if v["$f"] not in ("inf", "-inf", "nan"):
            raise ValueError(f"refused: bad float {v['$f']!r}")
        return float(v["$f"])
    if "$t" in v:
        return tuple(_import(x, d) for x in _list(v["$t"]))
    if "$d" in v:
        kind = v.get("$k", "dict")
        if kind == "deque":
            maxlen = v.get("$maxlen")
            if maxlen is not None and not isinstance(maxlen, int):
                raise ValueError("refused: bad deque length")
            return collections.deque((_import(x, d) for x in _list(v["$d"])), maxlen=maxlen)
        pairs = [(_key(_import(p[0], d)), _import(p[1], d)) for p in map(_pair, _list(v["$d"]))]
        if kind == "dict":
            return dict(pairs)
        if kind == "Counter":
            return collections.Counter(dict(pairs))
        if kind == "defaultdict":
            return collections.defaultdict(_import_factory(v.get("$default"), d), pairs)
        raise ValueError(f"refused: unknown mapping kind {kind!r}")
    if "$r" in v:
        rng = random.Random()
        state = _import(v["$r"], d)
        try:
            rng.setstate(state)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"refused: bad random state ({exc})") from None
        return rng
    if "$c" in v or "$p" in v:
        return _import_factory(v, d)
    if "$vd" in v:
        from river.utils import VectorDict

        data = _import(v["$vd"], d)
        if not isinstance(data, dict):
            raise ValueError("refused: bad VectorDict")
        if any(not isinstance(x, float | int) or isinstance(x, bool) for x in data.values()):
            raise ValueError("refused: a VectorDict holds numbers only")
        return VectorDict(data)
    if "$o" in v:
        cls = _allowed_class(v["$o"])
        fields = v.get("$v")
        if not isinstance(fields, dict):
            raise ValueError("refused: bad object fields")
        obj: Any = object.__new__(cls)  # no __init__, no __setstate__
        for name, x in fields.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
                raise ValueError(f"refused: bad field name {name!r}")
            try:
                object.__setattr__(obj, name, _import(x, d))
            except (AttributeError, TypeError) as exc:
                raise ValueError(f"refused: cannot set {v['$o']}.{name} ({exc})") from None
        return obj
    raise ValueError(f"refused: untagged object with keys {sorted(v)[:4]}")


def _import_factory(v: Any, depth: int) -> Any:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ValueError("refused: bad factory")
    if "$c" in v:
        name = v["$c"]
        if isinstance(name, str) and name.startswith("builtins:"):
            builtin = _BUILTIN_FACTORIES.get(name.split(":", 1)[1])
            if builtin is None:
                raise ValueError(f"refused: factory {name} is not allowed")
            return builtin
        return _allowed_class(name)
    if "$p" in v:
        func = _import_factory(v["$p"], depth + 1)
        args = [_import(a, depth + 1) for a in _list(v.get("$a", []))]
        if any(not (a is None or isinstance(a, bool | int | float | str)) for a in args):
            raise ValueError("refused: a factory's arguments must be plain values")
        return functools.partial(func, *args)
    return _import(v, depth + 1)


def _list(x: Any) -> list[Any]:
    if not isinstance(x, list):
        raise ValueError("refused: expected a list")
    return x


def _pair(x: Any) -> tuple[Any, Any]:
    if not isinstance(x, list) or len(x) != 2:
        raise ValueError("refused: expected a key-value pair")
    return x[0], x[1]


def _key(k: Any) -> Any:
    if isinstance(k, list):
        raise ValueError("refused: a list cannot be a key")
    return k
