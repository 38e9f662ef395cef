"""The control plane's state machine (SPEC §5.1, §5.4): commands in, inference states out.

Pure: :func:`decide` takes an inference's current state (or ``None``), one
:class:`Command`, what the deployment knows (:class:`Catalog`: models, topics, hooks) and
the wall time, and returns a :class:`Decision` — accepted or rejected, with a readable
reason, and the new state. The glue (``agents/controller.py``) applies decisions one at
a time, in control-topic order, and publishes both the state and the result.

Statuses and moves::

    create ─▶ Active ──pause──▶ UserPaused ──restart / update_model──▶ Active
                 │                   └──delete──▶ Deleted
                 └──fail (internal)──▶ SystemPaused ──restart / update_model──▶ Active
                                           └──delete──▶ Deleted

Every activation (create, restart, update_model) starts a new **epoch** from
``active_from_ms``: workers start that epoch's per-asset state afresh, pre-filled from the
topic's history, and score from the first point at or after ``active_from_ms``. On the wall
clock a restart starts at the wall time and reports the paused period as a gap. On the event
clock the inference's time is the feed's own, which did not move while it was paused: the
start is kept, and each asset resumes after the last point its earlier epoch took
(:meth:`streams.scoring.AssetScorer.new_state`), so nothing is skipped and no gap is reported.

``fail`` and ``rescore_late`` are internal (:data:`INTERNAL_COMMAND_TYPES`): on the internal
control topic a worker reports an inference that keeps failing, or asks for the ranges its
late points changed to be re-scored (:mod:`streams.late_rescore`); from the public control
topic they are rejected.

>>> catalog = StaticCatalog(models={("m", 1): ModelInfo("m", 1, "completed", ("v",))},
...                         topics={"tele": None})
>>> create = Command("c1", "create", "inf", {"model_id": "m", "topic": "tele"}, 1_000, "cli")
>>> d = decide(None, create, catalog, now_ms=1_000)
>>> d.accepted, d.state.status, d.state.epoch, d.state.config.model_version
(True, 'Active', 1, 1)
>>> pause = Command("c2", "pause", "inf", {}, 2_000, "cli")
>>> d2 = decide(d.state, pause, catalog, now_ms=2_000)
>>> d2.state.status, decide(d2.state, pause, catalog, now_ms=2_500).reason
('UserPaused', 'pause needs an Active inference; inf is UserPaused')
>>> d3 = decide(d2.state, Command("c3", "restart", "inf", {}, 9_000, "cli"), catalog, 9_000)
>>> d3.state.status, d3.state.epoch, d3.gap
('Active', 2, (2000, 9000))
>>> decide(d3.state, Command("c4", "fail", "inf", {}, 9_500, "me"), catalog, 9_500).reason
"fail is an internal command (a worker's report or request); it is not accepted from the public control topic"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Protocol, cast, get_args

from streams.inference import (
    MAX_ASSETS,
    MAX_MODEL_VERSION,
    MAX_START_MS,
    InferenceConfig,
    asset_id_problem,
    whole_number,
)
from streams.late_rescore import RescoreRange
from streams.replay import ReplayState, check_range, replay_id_of

Status = Literal["Active", "UserPaused", "SystemPaused", "Deleted"]
CommandType = Literal["create", "pause", "restart", "delete", "update_model", "replay", "fail",
                      "rescore_late"]
COMMAND_TYPES: Final = get_args(CommandType)
#: Commands only workers send, on the internal control topic (docs/control.md).
INTERNAL_COMMAND_TYPES: Final = ("fail", "rescore_late")
#: The most late ranges one ``rescore_late`` request carries.
MAX_LATE_RANGES: Final = 100
#: How far in the past a wall-clock start may be (the command's transit), in ms.
START_TOLERANCE_MS: Final = 60_000
#: How far ahead of now a wall-clock start may be: a year (a later one is a typo).
MAX_START_AHEAD_MS: Final = 366 * 86_400_000
#: The longest id, name or issuer a command carries (schemas/control-command.v1.json).
MAX_ID_CHARS: Final = 256
PAUSED: Final = ("UserPaused", "SystemPaused")


@dataclass(frozen=True, slots=True)
class Command:
    """One control command (``schemas/control-command.v1.json``)."""

    command_id: str
    type: CommandType
    inference_id: str
    params: Mapping[str, Any]
    issued_at_ms: int
    issued_by: str

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Command:
        """Read a command record; ``ValueError`` says what is wrong with it.

        >>> Command.from_record({"command_id": "c", "type": "pause", "inference_id": "i",
        ...                      "params": {}, "issued_at": 5, "issued_by": "cli"}).type
        'pause'
        >>> Command.from_record({"type": "stop"})
        Traceback (most recent call last):
        ...
        ValueError: command_id is required; unknown command type 'stop'
        """
        problems = [f"{k} is required" for k in ("command_id",) if not d.get(k)]
        kind = d.get("type")
        if not isinstance(kind, str) or kind not in COMMAND_TYPES:
            problems.append(f"unknown command type {kind!r}")
        if kind in COMMAND_TYPES and (not isinstance(d.get("inference_id"), str)
                                      or not d.get("inference_id")):
            problems.append("inference_id is required")
        for k in ("command_id", "inference_id", "issued_by"):
            if d.get(k) is not None and (not isinstance(d[k], str) or len(d[k]) > MAX_ID_CHARS):
                problems.append(f"{k} must be a string of at most {MAX_ID_CHARS} characters")
        params = d.get("params", {})
        if not isinstance(params, Mapping):
            problems.append("params must be an object")
        issued_at = 0
        try:
            issued_at = whole_number(d.get("issued_at", 0), "issued_at (epoch ms)", 0,
                                     MAX_START_MS - 1)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return cls(str(d["command_id"]), cast(CommandType, kind), str(d["inference_id"]), dict(params),
                   issued_at, str(d.get("issued_by") or "unknown"))

    def to_record(self) -> dict[str, Any]:
        return {"command_id": self.command_id, "type": self.type,
                "inference_id": self.inference_id, "params": dict(self.params),
                "issued_at": self.issued_at_ms, "issued_by": self.issued_by}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the control plane needs to know of one model version."""

    model_id: str
    version: int
    status: str
    signals: tuple[str, ...]
    reason: str | None = None


class Catalog(Protocol):
    """What the deployment knows, asked at decision time."""

    def model(self, model_id: str, version: int | None) -> ModelInfo | None:
        """That version (``None``: the latest), or ``None`` when there is no such model."""

    def topic_exists(self, topic: str) -> bool:
        """Whether workers serve and the broker has the topic."""

    def topic_signals(self, topic: str) -> frozenset[str] | None:
        """The signals seen on the topic so far; ``None`` while it has no data."""

    def hook_exists(self, name: str) -> bool:
        """Whether a hook of that name is registered."""


@dataclass(slots=True)
class StaticCatalog:
    """A catalog from plain dicts: tests, and the glue once it has looked things up.

    ``topics`` maps each served topic to the signals seen on it (``None``: no data yet).
    """

    models: Mapping[tuple[str, int], ModelInfo] = field(default_factory=dict)
    topics: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    hooks: frozenset[str] = frozenset()

    def model(self, model_id: str, version: int | None) -> ModelInfo | None:
        versions = sorted(v for (m, v) in self.models if m == model_id)
        if not versions:
            return None
        return self.models.get((model_id, versions[-1] if version is None else version))

    def topic_exists(self, topic: str) -> bool:
        return topic in self.topics

    def topic_signals(self, topic: str) -> frozenset[str] | None:
        return self.topics.get(topic)

    def hook_exists(self, name: str) -> bool:
        return name in self.hooks


@dataclass(frozen=True, slots=True)
class InferenceState:
    """An inference's full state: the status record (``schemas/status-event.v1.json``)."""

    config: InferenceConfig
    status: Status
    epoch: int
    active_from_ms: int
    created_at_ms: int
    updated_at_ms: int
    paused_at_ms: int | None = None
    error: str | None = None
    declared: bool = False

    @property
    def inference_id(self) -> str:
        return self.config.inference_id

    @property
    def active(self) -> bool:
        return self.status == "Active"

    def to_record(self) -> dict[str, Any]:
        """The compacted status topic's record (kind ``state``)."""
        return {
            "kind": "state", "inference_id": self.inference_id, "status": self.status,
            "config": self.config.to_dict(), "error": self.error,
            "updated_at": self.updated_at_ms, "epoch": self.epoch,
            "active_from": self.active_from_ms, "created_at": self.created_at_ms,
            "paused_at": self.paused_at_ms, "declared": self.declared,
        }

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> InferenceState:
        """Read a state record back.

        >>> s = InferenceState(InferenceConfig("i", "m", "t"), "Active", 1, 0, 0, 0)
        >>> InferenceState.from_record(s.to_record()) == s
        True
        """
        return cls(
            config=InferenceConfig.from_dict(d["config"]), status=d["status"],
            epoch=int(d["epoch"]), active_from_ms=int(d["active_from"]),
            created_at_ms=int(d["created_at"]), updated_at_ms=int(d["updated_at"]),
            paused_at_ms=None if d.get("paused_at") is None else int(d["paused_at"]),
            error=d.get("error"), declared=bool(d.get("declared", False)),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one command: the result record, and the new state if it changed."""

    command: Command
    accepted: bool
    reason: str
    at_ms: int
    state: InferenceState | None = None
    #: a paused period ``[from, to)`` that a restart reports as a gap
    gap: tuple[int, int] | None = None
    #: an accepted replay, Accepted (SPEC §6); the inference's state does not change
    replay: ReplayState | None = None
    #: an accepted ``rescore_late`` request: the ranges to queue, at the model's interval
    late: tuple[RescoreRange, ...] = ()
    late_interval_ms: int = 0

    def result_record(self) -> dict[str, Any]:
        """The event log's record (kind ``command_result``)."""
        return {"kind": "command_result", "command_id": self.command.command_id,
                "inference_id": self.command.inference_id, "type": self.command.type,
                "accepted": self.accepted, "reason": self.reason, "at": self.at_ms}


@dataclass(frozen=True, slots=True)
class ReplayContext:
    """What deciding a replay needs beyond the inference's state, looked up by the glue.

    ``interval_ms``: the inference's model's Δ; ``finalised_ms``: every slot before it has been
    finalised (``None``: nothing yet); ``running``: the inference's unfinished replay, if any.
    """

    interval_ms: int
    finalised_ms: int | None
    running: ReplayState | None = None


def _reject(cmd: Command, reason: str, now_ms: int) -> Decision:
    return Decision(cmd, False, reason, now_ms)


def decide(current: InferenceState | None, cmd: Command, catalog: Catalog, now_ms: int,
           internal: bool = False, replay: ReplayContext | None = None) -> Decision:
    """Accept or reject ``cmd`` against the inference's ``current`` state (SPEC §5.1, §5.4).

    ``internal``: whether the command came on the internal control topic, which only workers
    write; an internal command type from anywhere else is rejected. A ``Deleted`` state counts
    as no inference: its name can be used again. ``replay``: what a replay command is checked
    against (:class:`ReplayContext`); without it a replay is rejected.
    """
    if cmd.type in INTERNAL_COMMAND_TYPES and not internal:
        return _reject(cmd, f"{cmd.type} is an internal command (a worker's report or request); "
                       "it is not accepted from the public control topic", now_ms)
    if current is not None and current.status == "Deleted":
        current = None
    if cmd.type == "create":
        return _create(current, cmd, catalog, now_ms)
    if current is None:
        return _reject(cmd, f"no inference named {cmd.inference_id!r}", now_ms)
    name, status = current.inference_id, current.status
    if cmd.type == "pause":
        if status != "Active":
            return _reject(cmd, f"pause needs an Active inference; {name} is {status}", now_ms)
        state = replace(current, status="UserPaused", paused_at_ms=now_ms, updated_at_ms=now_ms)
        return Decision(cmd, True, "paused", now_ms, state)
    if cmd.type == "restart":
        if status not in PAUSED:
            return _reject(cmd, f"restart needs a paused inference; {name} is {status}", now_ms)
        return _activate(current, cmd, current.config, now_ms, "restarted")
    if cmd.type == "delete":
        if status not in PAUSED:
            return _reject(cmd, f"delete needs a paused inference; {name} is {status}", now_ms)
        state = replace(current, status="Deleted", updated_at_ms=now_ms)
        return Decision(cmd, True, "deleted; results already published stay", now_ms, state)
    if cmd.type == "update_model":
        return _update_model(current, cmd, catalog, now_ms)
    if cmd.type == "fail":
        if status != "Active":
            return _reject(cmd, f"{name} is {status}, not Active; failure report ignored", now_ms)
        error = str(cmd.params.get("error") or "internal failure")[:2_000]
        state = replace(current, status="SystemPaused", error=error, paused_at_ms=now_ms,
                        updated_at_ms=now_ms)
        return Decision(cmd, True, f"system paused: {error}", now_ms, state)
    if cmd.type == "rescore_late":
        return _rescore_late(current, cmd, now_ms)
    return _replay(current, cmd, replay, now_ms)


def _rescore_late(current: InferenceState, cmd: Command, now_ms: int) -> Decision:
    """Take a worker's late ranges for the controller's queue (:mod:`streams.late_rescore`).

    >>> st = InferenceState(InferenceConfig("inf", "m", "t", rescore_late=True), "Active", 1, 0, 0, 0)
    >>> c = Command("l1", "rescore_late", "inf", {"interval_ms": 1_000, "ranges": [
    ...     {"start_ms": 0, "end_ms": 9_000, "assets": ["pump-1"]}]}, 0, "worker:a")
    >>> d = decide(st, c, StaticCatalog(), 5, internal=True)
    >>> d.accepted, d.late[0].end_ms, d.late_interval_ms
    (True, 9000, 1000)
    >>> decide(replace(st, config=InferenceConfig("inf", "m", "t")), c, StaticCatalog(), 5,
    ...        internal=True).reason
    'inf does not re-score late data (option rescore_late is off)'
    """
    name = current.inference_id
    if current.status != "Active":
        return _reject(cmd, f"late re-score needs an Active inference; {name} is {current.status}",
                       now_ms)
    if not current.config.rescore_late:
        return _reject(cmd, f"{name} does not re-score late data (option rescore_late is off)",
                       now_ms)
    try:
        interval = whole_number(cmd.params.get("interval_ms"), "interval_ms", 1, MAX_START_MS)
        plain = cmd.params.get("ranges")
        if not isinstance(plain, list) or not 0 < len(plain) <= MAX_LATE_RANGES:
            raise ValueError(f"ranges must be a list of 1 to {MAX_LATE_RANGES} late ranges")
        ranges = tuple(RescoreRange.from_record(r) for r in plain)
        _check_assets([a for r in ranges for a in r.assets], current.config)
    except ValueError as exc:
        return _reject(cmd, f"late re-score: {exc}", now_ms)
    return Decision(cmd, True, f"{len(ranges)} late range(s) queued for re-score", now_ms,
                    late=ranges, late_interval_ms=interval)


def _check_assets(assets: list[Any], config: InferenceConfig) -> frozenset[str]:
    """The assets a replay names, each a valid asset id within the inference's filter."""
    if len(assets) > MAX_ASSETS:
        raise ValueError(f"a replay names at most {MAX_ASSETS} assets, got {len(assets)}")
    problems = sorted({p for a in assets if (p := asset_id_problem(a)) is not None})
    outside = sorted({a for a in assets if isinstance(a, str) and not config.wants(a)})
    if outside:
        problems.append(f"asset(s) outside the inference's filter: {', '.join(outside[:5])}")
    if problems:
        raise ValueError("; ".join(problems[:3]))
    return frozenset(assets)


def _replay(current: InferenceState, cmd: Command, ctx: ReplayContext | None,
            now_ms: int) -> Decision:
    """Accept a replay of ``[start, end)`` (SPEC §6), or say why not.

    >>> st = InferenceState(InferenceConfig("inf", "m", "t"), "Active", 1, 0, 0, 0)
    >>> c = Command("c9", "replay", "inf", {"start_ms": 0, "end_ms": 2_000_000}, 0, "cli")
    >>> d = decide(st, c, StaticCatalog(), 5, replay=ReplayContext(1_000, 3_000_000))
    >>> d.accepted, d.replay.replay_id, d.replay.total, d.state
    (True, 'inf/replay/0-2000000', 2000, None)
    >>> decide(st, c, StaticCatalog(), 5,
    ...        replay=ReplayContext(1_000, 3_000_000, running=d.replay)).reason
    'a replay of inf is already accepted: inf/replay/0-2000000 (0/2000 points); one replay at a time'
    """
    name, status = current.inference_id, current.status
    if status != "Active":
        return _reject(cmd, f"replay needs an Active inference; {name} is {status}", now_ms)
    if ctx is None:
        return _reject(cmd, "replay: this deployment cannot tell what has been finalised; "
                       "no worker serves the inference", now_ms)
    if ctx.running is not None and not ctx.running.finished:
        return _reject(cmd, ctx.running.busy_reason(), now_ms)
    problems: list[str] = []
    bounds: dict[str, int] = {}
    for k in ("start_ms", "end_ms"):
        if k not in cmd.params:
            problems.append(f"replay needs params.{k} (epoch ms)")
            continue
        try:
            bounds[k] = whole_number(cmd.params[k], f"replay {k} (epoch ms)", 0, MAX_START_MS)
        except ValueError as exc:
            problems.append(str(exc))
    assets: frozenset[str] = frozenset()
    asked = cmd.params.get("assets")
    if asked is not None:
        try:
            if not isinstance(asked, list):
                raise ValueError(f"params.assets must be a list of asset ids, got {asked!r}"[:200])
            assets = _check_assets(asked, current.config)
        except ValueError as exc:
            problems.append(f"replay {exc}")
    if problems:
        return _reject(cmd, "; ".join(problems), now_ms)
    start, end = bounds["start_ms"], bounds["end_ms"]
    try:
        total = check_range(start, end, ctx.interval_ms, ctx.finalised_ms)
    except ValueError as exc:
        return _reject(cmd, f"replay: {exc}", now_ms)
    state = ReplayState.accepted(replay_id_of(name, start, end, assets), name, start, end, total,
                                 now_ms, assets=assets)
    return Decision(cmd, True, f"replay {state.replay_id} accepted: [{start}, {end}), {total} "
                    "points; progress on the status topic", now_ms, replay=state)


def _activate(current: InferenceState, cmd: Command, config: InferenceConfig, now_ms: int,
              what: str) -> Decision:
    if config.clock == "event":
        # the feed's own time stood still while nothing took its points for this inference:
        # each asset resumes after the last point its earlier epoch took (the ones that came
        # meanwhile are read back from the topic), so there is no paused period to report
        state = replace(current, config=config, status="Active", epoch=current.epoch + 1,
                        active_from_ms=config.start_ms, paused_at_ms=None, error=None,
                        updated_at_ms=now_ms)
        return Decision(cmd, True, f"{what}; on the event clock each asset resumes after the last "
                        "point it took, in the feed's own time: nothing is skipped", now_ms, state)
    paused_at = current.paused_at_ms if current.paused_at_ms is not None else now_ms
    state = replace(current, config=replace(config, start_ms=now_ms), status="Active",
                    epoch=current.epoch + 1, active_from_ms=now_ms, paused_at_ms=None,
                    error=None, updated_at_ms=now_ms)
    return Decision(cmd, True, f"{what}; the paused period is a gap", now_ms, state,
                    gap=(paused_at, now_ms))


def _create(current: InferenceState | None, cmd: Command, catalog: Catalog, now_ms: int) -> Decision:
    params = dict(cmd.params)
    declare = bool(params.pop("declare", False))
    params.setdefault("inference_id", cmd.inference_id)
    if params["inference_id"] != cmd.inference_id:
        return _reject(cmd, "params.inference_id differs from the command's inference_id", now_ms)
    try:
        config = InferenceConfig.from_dict(params)
    except KeyError as exc:
        return _reject(cmd, f"invalid inference: {exc.args[0]} is required", now_ms)
    except (TypeError, ValueError) as exc:
        return _reject(cmd, f"invalid inference: {exc}", now_ms)
    problems: list[str] = []
    if config.clock == "wall":
        if "start_ms" not in params:
            config = replace(config, start_ms=now_ms)
        elif config.start_ms < now_ms - START_TOLERANCE_MS:
            problems.append(f"start time {config.start_ms} is in the past (now {now_ms}); "
                            "a replay scores history")
        elif config.start_ms > now_ms + MAX_START_AHEAD_MS:
            problems.append(f"start time {config.start_ms} is more than a year ahead "
                            f"(now {now_ms})")
    model = catalog.model(config.model_id, config.model_version)
    if model is None:
        which = "" if config.model_version is None else f" v{config.model_version}"
        problems.append(f"no model {config.model_id!r}{which}")
    elif model.status != "completed":
        why = f" ({model.reason})" if model.reason else ""
        problems.append(f"model {model.model_id!r} v{model.version} is {model.status}{why}; "
                        "only a completed model can be scheduled")
    if not catalog.topic_exists(config.topic):
        problems.append(f"unknown topic {config.topic!r}")
    elif model is not None:
        seen = catalog.topic_signals(config.topic)
        missing = sorted(set(model.signals) - seen) if seen is not None else []
        if missing:
            problems.append(f"the model needs signal(s) {', '.join(missing)} that topic "
                            f"{config.topic!r} does not carry")
    problems += [f"unknown hook {h!r}" for h in config.hooks if not catalog.hook_exists(h)]
    if problems:
        return _reject(cmd, "; ".join(problems), now_ms)
    assert model is not None
    config = replace(config, model_version=model.version)
    if current is not None:
        same = replace(config, start_ms=current.config.start_ms,
                       model_version=current.config.model_version) == current.config
        if declare and current.declared and same:
            return Decision(cmd, True, "already declared with this configuration", now_ms)
        return _reject(cmd, f"an inference named {cmd.inference_id!r} exists ({current.status}); "
                       "pick another name, or pause and delete it first", now_ms)
    state = InferenceState(config, "Active", 1, config.start_ms, now_ms, now_ms, declared=declare)
    return Decision(cmd, True, f"created; scoring from {config.start_ms}", now_ms, state)


def _update_model(current: InferenceState, cmd: Command, catalog: Catalog, now_ms: int) -> Decision:
    name, status = current.inference_id, current.status
    if status not in PAUSED:
        return _reject(cmd, f"update_model needs a paused inference; {name} is {status}", now_ms)
    model_id = cmd.params.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        return _reject(cmd, "update_model needs params.model_id", now_ms)
    version = cmd.params.get("model_version")
    if version is not None:
        try:
            version = whole_number(version, "model version", 1, MAX_MODEL_VERSION)
        except ValueError as exc:
            return _reject(cmd, f"update_model: {exc}", now_ms)
    model = catalog.model(model_id, version)
    if model is None:
        return _reject(cmd, f"no model {model_id!r}" + ("" if version is None else f" v{version}"),
                       now_ms)
    if model.status != "completed":
        return _reject(cmd, f"model {model_id!r} v{model.version} is {model.status}; only a "
                       "completed model can be scheduled", now_ms)
    old = catalog.model(current.config.model_id, current.config.model_version)
    if old is not None and set(old.signals) != set(model.signals):
        return _reject(cmd, f"signals differ: the inference scores {', '.join(sorted(old.signals))}; "
                       f"model {model_id!r} v{model.version} takes "
                       f"{', '.join(sorted(model.signals))}", now_ms)
    config = replace(current.config, model_id=model.model_id, model_version=model.version)
    return _activate(current, cmd, config, now_ms, f"model now {model_id} v{model.version}; restarted")
