"""``assetwatch inference …``: schedule and control streaming inferences (SPEC §5.1, §5.4).

Every command talks to a running deployment (a worker must be running against the broker
to decide commands), so ``--broker`` (or ``ASSETWATCH_BROKER``) is required. A rejected
command prints its reason on one line and exits with status 1.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NoReturn

import click
import orjson

from agents.broker import connect
from agents.control_client import (
    ControlClient,
    ControlTimeoutError,
    aggregate,
    describe,
    latest_replays,
)
from agents.settings import Settings
from streams.control import CommandType
from streams.decode import parse_timestamp
from streams.inference import InferenceConfig, delay_ms_from_seconds


def _client(broker: str | None, topic_prefix: str | None) -> ControlClient:
    settings = Settings.from_env(os.environ, broker=broker, topic_prefix=topic_prefix)
    if settings.broker is None:
        raise click.UsageError("inference commands talk to a running deployment: pass "
                               "--broker HOST:PORT or set ASSETWATCH_BROKER")
    return ControlClient(connect(settings), settings)


def _options(f: Any) -> Any:
    f = click.option("--broker", metavar="HOST:PORT", default=None,
                     help="Kafka bootstrap address of the deployment (env ASSETWATCH_BROKER).")(f)
    f = click.option("--topic-prefix", default=None,
                     help="The deployment's topic prefix (default assetwatch).")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)
    return f


def _finish(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(result).decode())
    elif result["accepted"]:
        click.echo(f"accepted: {result['reason']}")
    else:
        click.echo(f"assetwatch: rejected: {result['reason']}", err=True)
    if not result["accepted"]:
        sys.exit(1)


def _unknown(name: str) -> NoReturn:
    """The line (and status) a command naming no inference gets, read or control alike: the
    control logic's rejection, word for word."""
    click.echo(f"assetwatch: rejected: no inference named {name!r}", err=True)
    sys.exit(1)


def _send(client: ControlClient, type_: CommandType, name: str, params: dict[str, Any],
          timeout: float) -> dict[str, Any]:
    try:
        return client.send(client.command(type_, name, params), timeout_s=timeout)
    except ControlTimeoutError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("inference")
def inference_group() -> None:
    """Schedule, inspect, pause, restart, update and delete streaming inferences."""


timeout_option = click.option("--timeout", type=float, default=30.0, show_default=True,
                              help="Seconds to wait for a worker's answer.")


@inference_group.command("create")
@click.argument("name")
@click.option("--model", "model_id", required=True, help="Model id (a Completed model).")
@click.option("--model-version", type=int, default=None, help="Default: the latest Completed.")
@click.option("--topic", required=True, help="Telemetry topic (the dataset).")
@click.option("--asset", "assets", multiple=True, help="Score only these assets (repeatable).")
@click.option("--start", default=None,
              help="First timestamp scored: ISO 8601 or epoch ms (default: now). Not in the past.")
@click.option("--delay", "delay_s", type=float, default=0.0, show_default=True,
              help="Data delay offset, seconds.")
@click.option("--sensitivity", type=int, default=None, help="1–100 (default 70).")
@click.option("--clock", type=click.Choice(["wall", "event"]), default="wall", show_default=True)
@click.option("--alert", "alerts", multiple=True, metavar="JSON",
              help='Alert configuration, e.g. \'{"name": "high-vib", "correlation_points": 5}\'.')
@click.option("--hook", "hooks", multiple=True, help="Hook to notify (repeatable).")
@click.option("--rescore-late", is_flag=True,
              help="Re-score the ranges late points change, automatically (replays, no alerts).")
@timeout_option
@_options
def create(name: str, model_id: str, model_version: int | None, topic: str, assets: tuple[str, ...],
           start: str | None, delay_s: float, sensitivity: int | None, clock: str,
           alerts: tuple[str, ...], hooks: tuple[str, ...], rescore_late: bool, timeout: float,
           broker: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """Schedule a streaming inference NAME."""

    def refuse(reason: str) -> None:
        _finish({"kind": "command_result", "type": "create", "inference_id": name,
                 "accepted": False, "reason": reason}, as_json)

    try:
        delay_ms = delay_ms_from_seconds(delay_s)
    except ValueError as exc:
        return refuse(f"invalid inference: {exc}")
    params: dict[str, Any] = {"model_id": model_id, "topic": topic, "delay_ms": delay_ms,
                              "clock": clock, "assets": list(assets), "hooks": list(hooks),
                              "rescore_late": rescore_late}
    if model_version is not None:
        params["model_version"] = model_version
    if sensitivity is not None:
        params["sensitivity"] = sensitivity
    if start is not None:
        parsed = int(start) if start.lstrip("-").isdigit() else parse_timestamp(start)
        if isinstance(parsed, str):
            return refuse(f"invalid inference: --start {parsed}")
        params["start_ms"] = parsed
    try:
        params["alerts"] = [orjson.loads(a) for a in alerts]
    except orjson.JSONDecodeError as exc:
        return refuse(f"invalid inference: --alert is not JSON: {exc}")
    # the bounds the controller checks, checked here first by the same code: a typo is refused
    # at once, without a round trip to the deployment
    try:
        InferenceConfig.from_dict({**params, "inference_id": name})
    except KeyError as exc:
        return refuse(f"invalid inference: {exc.args[0]} is required")
    except (TypeError, ValueError) as exc:
        return refuse(f"invalid inference: {exc}")
    _finish(_send(_client(broker, topic_prefix), "create", name, params, timeout), as_json)


def _simple(type_: CommandType, help_text: str) -> None:
    @inference_group.command(type_.replace("_", "-"), help=help_text)
    @click.argument("name")
    @timeout_option
    @_options
    def command(name: str, timeout: float, broker: str | None, topic_prefix: str | None,
                as_json: bool) -> None:
        _finish(_send(_client(broker, topic_prefix), type_, name, {}, timeout), as_json)


_simple("pause", "Pause an Active inference (Active → UserPaused).")
_simple("restart", "Restart a paused inference; the paused period is reported as a gap.")
_simple("delete", "Delete a paused inference; results already published stay.")


@inference_group.command("update-model")
@click.argument("name")
@click.option("--model", "model_id", required=True)
@click.option("--model-version", type=int, default=None, help="Default: the latest Completed.")
@timeout_option
@_options
def update_model(name: str, model_id: str, model_version: int | None, timeout: float,
                 broker: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """Point a paused inference at another model with the same signals; it restarts at once."""
    params: dict[str, Any] = {"model_id": model_id}
    if model_version is not None:
        params["model_version"] = model_version
    _finish(_send(_client(broker, topic_prefix), "update_model", name, params, timeout), as_json)


@inference_group.command("replay")
@click.argument("name")
@click.option("--start", required=True, help="Start of the range (ISO-8601 or epoch ms).")
@click.option("--end", required=True, help="End of the range, exclusive (ISO-8601 or epoch ms).")
@click.option("--asset", "assets", multiple=True,
              help="Replay only these assets (repeatable; default: all the inference's).")
@click.option("--wait", is_flag=True, help="Wait for the replay to succeed or fail.")
@timeout_option
@_options
def replay(name: str, start: str, end: str, assets: tuple[str, ...], wait: bool, timeout: float,
           broker: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """Re-score a past range of an Active inference and overwrite its anomalies (SPEC §6):
    at most 2,000 data points, one replay per inference at a time, no alerts."""
    params: dict[str, Any] = {"assets": list(assets)} if assets else {}
    for key, text in (("start_ms", start), ("end_ms", end)):
        parsed = int(text) if text.lstrip("-").isdigit() else parse_timestamp(text)
        if isinstance(parsed, str):
            return _finish({"kind": "command_result", "type": "replay", "inference_id": name,
                            "accepted": False,
                            "reason": f"--{key[:-3]} {parsed}"}, as_json)
        params[key] = parsed
    client = _client(broker, topic_prefix)
    result = _send(client, "replay", name, params, timeout)
    if not wait or not result["accepted"]:
        return _finish(result, as_json)
    replay_id = str(result["reason"]).split()[1]  # "replay <id> accepted: …"
    try:
        outcome = client.wait_replay(name, replay_id, timeout_s=timeout,
                                     since_ms=int(result.get("at", 0)))
    except ControlTimeoutError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(orjson.dumps(outcome).decode())
    elif outcome["status"] == "Succeeded":
        click.echo(f"replay {replay_id}: Succeeded, {outcome['done']}/{outcome['total']} points")
    else:
        click.echo(f"assetwatch: replay {replay_id} failed: {outcome.get('reason')}", err=True)
    if outcome["status"] != "Succeeded":
        sys.exit(1)


@inference_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deleted inferences.")
@_options
def list_(show_all: bool, broker: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """List inferences with their status."""
    client = _client(broker, topic_prefix)
    states = [s for s in client.states().values() if show_all or s.status != "Deleted"]
    if as_json:
        click.echo(orjson.dumps([s.to_record() for s in states]).decode())
        return
    if not states:
        click.echo("no inferences")
        return
    click.echo(f"{'NAME':<24} {'STATUS':<13} {'MODEL':<20} {'TOPIC':<28} EPOCH")
    for s in sorted(states, key=lambda s: s.inference_id):
        model = f"{s.config.model_id} v{s.config.model_version}"
        click.echo(f"{s.inference_id:<24} {s.status:<13} {model:<20} {s.config.topic:<28} {s.epoch}")


@inference_group.command("show")
@click.argument("name")
@_options
def show(name: str, broker: str | None, topic_prefix: str | None, as_json: bool) -> None:
    """Show an inference: state, last finalised slot, watermark lag, counts, errors, events."""
    client = _client(broker, topic_prefix)
    state = client.states().get(name)
    if state is None:
        _unknown(name)
    progress = aggregate(state, client.stats(), time.time_ns() // 1_000_000)
    events = client.events(name)
    if as_json:
        click.echo(orjson.dumps({"state": state.to_record(), "progress": progress,
                                 "replays": latest_replays(events),
                                 "events": events[-20:]}).decode())
        return
    click.echo(describe(state, progress, events))
