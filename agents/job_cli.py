"""``assetwatch job …``: asynchronous detection jobs over large inputs (SPEC §8; docs/batch.md).

Jobs run on the deployment's workers, so ``--broker`` (or ``ASSETWATCH_BROKER``) is
required; inputs and outputs must be reachable from the workers (a shared path, or S3).
``--input -`` reads standard input and stages it beside the results
(``<output>/<model>/.inputs/<job id>.<csv|json>``), where the worker reads it; the staged
copy is removed once the job is final.

Errors end in one line ``assetwatch: error: ...``, exit status 2; ``job wait`` exits 1 when
the job ends Failed or Canceled.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import click
import orjson

from agents.broker import BrokerError, connect
from agents.cli_support import CliUserError, user_errors
from agents.job_io import Storage, StorageError, parse_location
from agents.job_runner import STAGING
from agents.jobs import JobClient, JobError, new_job_id, wall_ms
from agents.settings import Settings
from streams.codec import format_ts
from streams.jobs import JobSpec, JobState

_user_errors = user_errors(JobError, StorageError, BrokerError, ValueError, OSError)


@contextlib.contextmanager
def _client(broker: str | None, topic_prefix: str | None) -> Iterator[JobClient]:
    settings = Settings.from_env(os.environ, broker=broker, topic_prefix=topic_prefix)
    if settings.broker is None:
        raise CliUserError("job commands talk to a running deployment: pass --broker HOST:PORT "
                           "or set ASSETWATCH_BROKER")
    client = JobClient(connect(settings), settings)
    try:
        yield client
    finally:
        client.close()


def _options(f: Any) -> Any:
    f = click.option("--broker", metavar="HOST:PORT", default=None,
                     help="Kafka bootstrap address of the deployment (env ASSETWATCH_BROKER).")(f)
    f = click.option("--topic-prefix", default=None,
                     help="The deployment's topic prefix (default assetwatch).")(f)
    return f


def describe(s: JobState) -> str:
    """One line: id, state, progress, model and input, and the outcome."""
    spec = s.spec
    line = f"{s.job_id}  {s.state}"
    if s.state == "InProgress":
        line += f" {s.progress_pct:.0f}% (attempt {s.attempt}, {s.worker})"
    line += f"  {spec.model_id}  {spec.input} → {spec.output}"
    if s.result:
        line += f"  results: {s.result}"
    if s.reason:
        line += f"  reason: {s.reason}"
    return line


def _detail(s: JobState) -> str:
    lines = [describe(s), "history: " + " → ".join(f"{st} {format_ts(at)}" for st, at in s.history)]
    if s.counts:
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in s.counts.items()))
    if s.rejected:
        by = ", ".join(f"{n} {k}" for k, n in s.rejected.get("by_reason", {}).items())
        lines.append(f"rejected rows: {by}")
        lines += [f"  row {e['row']}: {e['reason']}" for e in s.rejected.get("examples", [])]
    return "\n".join(lines)


@click.group("job")
def job_group() -> None:
    """Create, list, show, cancel and wait for asynchronous detection jobs."""


def _stage(output: str, model_id: str, job_id: str) -> str:
    """Copy standard input beside the results, where a worker can read it; its location."""
    data = sys.stdin.buffer.read()
    ext = "json" if data.lstrip()[:1] == b"{" else "csv"
    target = parse_location(output).child(model_id, STAGING, f"{job_id}.{ext}")
    storage = Storage()
    if target.bucket is None:
        path = os.path.abspath(target.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        return path
    try:
        storage.s3.put_object(Bucket=target.bucket, Key=target.path, Body=data)
    except Exception as exc:
        raise StorageError(f"cannot stage standard input at {target}: {exc}") from None
    return str(target)


@job_group.command("create")
@click.option("--model", "model_id", required=True, help="Model id.")
@click.option("--input", "input_", required=True, metavar="PATH|s3://bucket/key|-",
              help="CSV or JSON (signalNames/data) input; - reads standard input.")
@click.option("--output", required=True, metavar="DIR|s3://bucket/prefix",
              help="Results go to <output>/<model id>/<input name>-results.json.")
@click.option("--name", default=None, help="Input name in the results file's name (default: from --input).")
@click.option("--version", "model_version", type=click.IntRange(min=1), default=None,
              help="Model version (default: the latest).")
@click.option("--sensitivity", type=click.IntRange(1, 100), default=None,
              help="1-100 (default: the model's target-FAR sensitivity, else 70).")
@click.option("--timestamp-column", default=None, help="CSV timestamp column (default as in training).")
@click.option("--wait", "wait_", is_flag=True, help="Wait for the job to end (a progress bar on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the job's state as JSON.")
@_options
@_user_errors
def create_cmd(model_id: str, input_: str, output: str, name: str | None, model_version: int | None,
               sensitivity: int | None, timestamp_column: str | None, wait_: bool, as_json: bool,
               broker: str | None, topic_prefix: str | None) -> None:
    """Queue a detection job; print its id."""
    job_id = new_job_id()
    parse_location(output)
    location = input_
    if input_ == "-":
        location = _stage(output, model_id, job_id)
        name = name or "stdin"
    elif "://" not in input_:
        location = os.path.abspath(input_)
    out = output if "://" in output else os.path.abspath(output)
    spec = JobSpec(job_id=job_id, model_id=model_id, input=location, output=out, name=name,
                   model_version=model_version, sensitivity=sensitivity,
                   timestamp_column=timestamp_column, submitted_at_ms=wall_ms(), submitted_by="cli")
    with _client(broker, topic_prefix) as client:
        state = client.create(spec)
        if not wait_:
            click.echo(orjson.dumps(state.to_record()).decode() if as_json else job_id)
            return
        click.echo(job_id, err=True)
        _wait(client, job_id, None, as_json)


@job_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the states as JSON.")
@_options
@_user_errors
def list_cmd(as_json: bool, broker: str | None, topic_prefix: str | None) -> None:
    """Every job, oldest first."""
    with _client(broker, topic_prefix) as client:
        jobs = client.jobs()
    if as_json:
        click.echo(orjson.dumps([j.to_record() for j in jobs]).decode())
    elif not jobs:
        click.echo("no jobs")
    for j in [] if as_json else jobs:
        click.echo(describe(j))


@job_group.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@_options
@_user_errors
def show_cmd(job_id: str, as_json: bool, broker: str | None, topic_prefix: str | None) -> None:
    """A job's state, history, counts and rejected rows."""
    with _client(broker, topic_prefix) as client:
        state = client.get(job_id)
    click.echo(orjson.dumps(state.to_record()).decode() if as_json else _detail(state))


@job_group.command("cancel")
@click.argument("job_id")
@_options
@_user_errors
def cancel_cmd(job_id: str, broker: str | None, topic_prefix: str | None) -> None:
    """Ask a job to stop (it ends Canceled, with no results file)."""
    with _client(broker, topic_prefix) as client:
        client.cancel(job_id)
    click.echo(f"cancel requested for {job_id}")


@job_group.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the final state as JSON.")
@_options
@_user_errors
def wait_cmd(job_id: str, timeout: float | None, as_json: bool, broker: str | None,
             topic_prefix: str | None) -> None:
    """Follow a job until it ends; exit 1 when it ends Failed or Canceled."""
    with _client(broker, topic_prefix) as client:
        _wait(client, job_id, timeout, as_json)


def _wait(client: JobClient, job_id: str, timeout: float | None, as_json: bool) -> None:
    tty = sys.stderr.isatty() and not as_json
    bar: Any = None
    done = [0]
    started = time.monotonic()

    def on_change(s: JobState) -> None:
        nonlocal bar
        if tty:
            if bar is None and s.state == "InProgress":
                bar = click.progressbar(length=100, label=f"{job_id} {s.spec.input_name}", file=sys.stderr)
                bar.__enter__()
            if bar is not None:
                step = int(s.progress_pct if not s.final else 100) - done[0]
                if step > 0:
                    bar.update(step)
                    done[0] += step
        elif not as_json:
            click.echo(f"{time.monotonic() - started:6.1f}s  {describe(s)}", err=True)

    try:
        final = client.wait(job_id, timeout, on_change)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(orjson.dumps(final.to_record()).decode() if as_json else _detail(final))
    if final.state in ("Failed", "Canceled"):
        sys.exit(1)
